import { test } from "node:test";
import assert from "node:assert/strict";
import { createParser } from "../fanfare.js";

const encoder = new TextEncoder();

function collect(chunks, { end = true, lastEventId } = {}) {
  const out = { events: [], retries: [], comments: [] };
  const parser = createParser(
    (event) => out.events.push(event),
    (ms) => out.retries.push(ms),
    (text) => out.comments.push(text),
    lastEventId,
  );
  for (const chunk of chunks) parser.feed(chunk);
  if (end) parser.end();
  out.lastEventId = parser.lastEventId;
  return out;
}

const parse = (text, options) => collect([encoder.encode(text)], options);
const ev = (data, id = "", type = "message") => ({ type, data, id });

const SAMPLE =
  "\uFEFF: hello\r\n" +
  "retry: 1500\r\n" +
  "id: 1\r\n" +
  "data: first\r\n" +
  "\r\n" +
  "event: update\r" +
  "data: é ünï 🎉\r" +
  "data:second line\r" +
  "\r" +
  "id: bad\0id\n" +
  "data:  two spaces\n" +
  "\n" +
  "retry: 12x\n" +
  "id\n" +
  "data\n" +
  "\n" +
  ": comment\n" +
  "event: ignored\n" +
  "\n" +
  "data: tail";

const SAMPLE_EXPECTED = {
  events: [ev("first", "1"), ev("é ünï 🎉\nsecond line", "1", "update"), ev(" two spaces", "1"), ev("", "")],
  retries: [1500],
  comments: ["hello", "comment"],
  lastEventId: "",
};

test("the sample stream in one chunk", () => {
  assert.deepEqual(parse(SAMPLE), SAMPLE_EXPECTED);
});

test("the sample stream split at every byte position gives the same events", () => {
  const bytes = encoder.encode(SAMPLE);
  for (let i = 0; i <= bytes.length; i++) {
    assert.deepEqual(collect([bytes.subarray(0, i), bytes.subarray(i)]), SAMPLE_EXPECTED, `split at ${i}`);
  }
});

test("the sample stream split at every pair of byte positions", () => {
  const bytes = encoder.encode(SAMPLE);
  for (let i = 0; i <= bytes.length; i += 1) {
    for (let j = i; j <= bytes.length; j += 3) {
      const chunks = [bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)];
      assert.deepEqual(collect(chunks), SAMPLE_EXPECTED, `split at ${i}, ${j}`);
    }
  }
});

test("the sample stream fed one byte at a time, and as strings", () => {
  const bytes = encoder.encode(SAMPLE);
  assert.deepEqual(collect([...bytes].map((b) => new Uint8Array([b]))), SAMPLE_EXPECTED);
  assert.deepEqual(collect([SAMPLE.slice(0, 7), SAMPLE.slice(7)]), SAMPLE_EXPECTED);
});

test("a CR ending one chunk and an LF starting the next are one line break", () => {
  const { events } = collect([encoder.encode("data: a\r"), encoder.encode("\ndata: b\r\n\r\n")]);
  assert.deepEqual(events, [ev("a\nb")]);
  assert.deepEqual(collect(["data: a\r", "\n", "data: b\r", "\r"]).events, [ev("a\nb")]);
  assert.deepEqual(collect(["data: a\r", "", "\ndata: b\n\n"]).events, [ev("a\nb")]);
});

test("CR, LF and CRLF line endings, mixed", () => {
  assert.deepEqual(parse("data: a\rdata: b\ndata: c\r\n\r\ndata: d\n\r\n").events, [ev("a\nb\nc"), ev("d")]);
  assert.deepEqual(parse("data: x\r\r").events, [ev("x")]);
});

test("a leading BOM is stripped once, also when split across chunks", () => {
  assert.deepEqual(parse("\uFEFFdata: a\n\n").events, [ev("a")]);
  const bytes = encoder.encode("\uFEFFdata: a\n\n");
  assert.deepEqual(collect([bytes.subarray(0, 1), bytes.subarray(1, 2), bytes.subarray(2)]).events, [ev("a")]);
  // A second BOM is part of the next field name, which is then unknown.
  assert.deepEqual(parse("\uFEFF\uFEFFdata: a\n\ndata: b\n\n").events, [ev("b")]);
  assert.deepEqual(parse("data: a\n\n\uFEFFdata: b\n\n").events, [ev("a")]);
});

test("multi-line data is joined with LF; one leading space is removed", () => {
  assert.deepEqual(parse("data: one\ndata:two\ndata:  three\ndata\ndata:\n\n").events, [ev("one\ntwo\n three\n\n")]);
  assert.deepEqual(parse("data:\n\n").events, [ev("")]);
  assert.deepEqual(parse("data: a:b: c\n\n").events, [ev("a:b: c")]);
});

test("nothing is dispatched when the data buffer is empty, and the type resets", () => {
  const out = parse("event: x\n\nevent: y\nid: 7\n\ndata: z\n\n");
  assert.deepEqual(out.events, [ev("z", "7")]);
  assert.equal(out.lastEventId, "7");
  assert.equal(parse("id: 9\n\n").lastEventId, "9");
});

test("event type defaults to message and is per event", () => {
  assert.deepEqual(parse("event: a\ndata: 1\n\ndata: 2\n\nevent:\ndata: 3\n\n").events,
    [ev("1", "", "a"), ev("2"), ev("3")]);
});

test("the id persists until changed; an id with NUL is ignored; an empty id resets", () => {
  const out = parse("id: 5\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\nid\ndata: d\n\nid: 6\ndata: e\n\nid:\ndata: f\n\n");
  assert.deepEqual(out.events, [ev("a", "5"), ev("b", "5"), ev("c", "5"), ev("d", ""), ev("e", "6"), ev("f", "")]);
  assert.deepEqual(parse("data: a\n\n", { lastEventId: "seed" }).events, [ev("a", "seed")]);
});

test("retry only when all ASCII digits", () => {
  const out = parse("retry: 100\nretry: 1e3\nretry: -1\nretry:  200\nretry: 10.5\nretry:\nretry: ٣\nretry:0\nretry: 300 \n");
  assert.deepEqual(out.retries, [100, 0]);
  assert.deepEqual(out.events, []);
});

test("comments are reported and never dispatched", () => {
  const out = parse(": heartbeat\n:\n:no space\n:  two\n\n");
  assert.deepEqual(out.comments, ["heartbeat", "", "no space", " two"]);
  assert.deepEqual(out.events, []);
});

test("unknown fields and field names with spaces are ignored", () => {
  assert.deepEqual(parse("foo: bar\ndata : x\nData: y\ndata: z\n\n").events, [ev("z")]);
});

test("an unterminated last event at EOF is discarded", () => {
  assert.deepEqual(parse("data: a\n\ndata: b").events, [ev("a")]);
  assert.deepEqual(parse("data: a\n\ndata: b\n").events, [ev("a")]);
  const out = parse("data: a\n\nid: 3\ndata: b\n");
  assert.equal(out.lastEventId, "");
  // Without end(), the pending event is simply not dispatched yet.
  assert.deepEqual(collect(["data: a\n"], { end: false }).events, []);
});

test("UTF-8 split inside a character, and invalid bytes become U+FFFD", () => {
  const bytes = encoder.encode("data: 🎉é\n\n");
  for (let i = 0; i <= bytes.length; i++) {
    assert.deepEqual(collect([bytes.subarray(0, i), bytes.subarray(i)]).events, [ev("🎉é")], `split at ${i}`);
  }
  assert.deepEqual(collect([new Uint8Array([0x64, 0x61, 0x74, 0x61, 0x3a, 0xff, 0x0a, 0x0a])]).events, [ev("\uFFFD")]);
});

test("many events in one chunk, with the event buffers reset between them", () => {
  const text = Array.from({ length: 50 }, (_, i) => `id: ${i}\nevent: t${i % 2}\ndata: ${i}\n\n`).join("");
  const out = parse(text);
  assert.equal(out.events.length, 50);
  assert.deepEqual(out.events[49], ev("49", "49", "t1"));
});
