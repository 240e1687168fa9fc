import NIOCore
import NIOPosix
import Testing

@testable import Fanfare

/// The leases' pure parts: what a batch of stream changes asks of Redis, which streams
/// count for presence, the disconnect request that ends one stream, and the embedded
/// node's places.
struct LeaseTests {
    @Test func aBatchReleasesPlacesAndEntersBeforeItLeaves() {
        var book = LeaseBook()
        let phone = StreamLeases(user: "ann", lease: "l1", place: "001 l1", presence: ["room", "hall"])
        let laptop = StreamLeases(user: "ann", lease: "l2", place: "002 l2", presence: ["room"])
        let unopened = StreamLeases(user: "bob", lease: "l3", place: "003 l3", presence: ["room"])
        let actions = book.apply([.opened(phone), .opened(laptop), .closed(phone), .released(unopened)])
        #expect(
            actions.releases == [
                LeaseBook.Place(user: "ann", place: "001 l1"), LeaseBook.Place(user: "bob", place: "003 l3"),
            ]
        )
        #expect(
            actions.enters == [
                "room": [LeaseBook.Presence(user: "ann", lease: "l1"), LeaseBook.Presence(user: "ann", lease: "l2")],
                "hall": [LeaseBook.Presence(user: "ann", lease: "l1")],
            ]
        )
        // The stream that never opened never entered, so it does not leave.
        #expect(
            actions.leaves == [
                "room": [LeaseBook.Presence(user: "ann", lease: "l1")],
                "hall": [LeaseBook.Presence(user: "ann", lease: "l1")],
            ]
        )
        // What is renewed next: the laptop's place and presence only.
        #expect(book.places == ["ann": ["002 l2"]])
        #expect(book.presence == ["room": ["l2": "ann"]])
        book.forget(LeaseBook.Place(user: "ann", place: "002 l2"))
        #expect(book.places.isEmpty)
        #expect(book.apply([]).isEmpty)
        #expect(LeaseBook.lease(of: "000000000000042 abc") == "abc")
    }

    @Test func onlyAUsersTopicsCountForPresence() throws {
        let stream = try StreamChannels(requested: "a", userID: "ann", topics: "room,presence:hall", grant: nil)
        #expect(stream.userID == "ann")
        #expect(stream.presenceChannels == ["room"])
        let anonymous = try StreamChannels(requested: "b", userID: nil, topics: "room", grant: nil)
        #expect(anonymous.presenceChannels.isEmpty)
        #expect(throws: FanfareError.self) {
            try StreamChannels(requested: "a", userID: "ann", topics: "presence:room", grant: nil, presence: false)
        }
        // A grant must name the presence channel (or a pattern that covers it).
        #expect(throws: FanfareError.self) {
            try StreamChannels(
                requested: "a",
                userID: nil,
                topics: "presence:room",
                grant: Grant(userID: "a", patterns: ["client:a", "room"])
            )
        }
        let granted = try StreamChannels(
            requested: "a",
            userID: nil,
            topics: "presence:room",
            grant: Grant(userID: "a", patterns: ["client:a", "presence:room"])
        )
        #expect(granted.channels.contains("presence:room"))
        #expect(ChannelName.presenceOf("presence:room") == "room")
        #expect(ChannelName.presenceOf("presence:") == nil)
        #expect(!ChannelName.hasPresence("client:a") && !ChannelName.hasPresence("broadcast"))
    }

    @Test func aDisconnectRequestMayNameOneStreamsLease() {
        let message = ByteBuffer(string: "! abc 0 abc\nconnection limit per user: a newer stream opened")
        let request = DisconnectRequest(channel: "user:ann", message: message)
        #expect(request?.lease == "abc")
        #expect(request?.reconnect == false)
        #expect(request?.reason == "connection limit per user: a newer stream opened")
        #expect(
            DisconnectRequest(channel: "user:ann", message: ByteBuffer(string: "! abc 0\nlogged out"))?.lease == nil
        )
        #expect(DisconnectRequest(channel: "user:ann", message: ByteBuffer(string: "! abc 0 x y\nr")) == nil)
    }

    @Test func theEmbeddedNodeCountsPlacesRefusesAndReplacesTheOldest() async throws {
        let (node, group) = try await TestNode.context()
        let leases = EmbeddedLeases(bus: node.bus, hub: node.hub)
        let loop = group.next()
        #expect(
            try await leases.acquire(user: "u", lease: "a", limit: 2, policy: .refuse, on: loop)
                == .granted(place: "a", ended: [])
        )
        #expect(
            try await leases.acquire(user: "u", lease: "b", limit: 2, policy: .refuse, on: loop)
                == .granted(place: "b", ended: [])
        )
        #expect(try await leases.acquire(user: "u", lease: "c", limit: 2, policy: .refuse, on: loop) == .refused)
        // Another user has places of its own.
        #expect(
            try await leases.acquire(user: "v", lease: "d", limit: 2, policy: .refuse, on: loop)
                == .granted(place: "d", ended: [])
        )
        #expect(
            try await leases.acquire(user: "u", lease: "e", limit: 2, policy: .closeOldest, on: loop)
                == .granted(place: "e", ended: ["a"])
        )
        // A stream that closes gives its place back at once.
        leases.closed(StreamLeases(user: "u", lease: "b", place: "b"))
        #expect(
            try await leases.acquire(user: "u", lease: "f", limit: 2, policy: .refuse, on: loop)
                == .granted(place: "f", ended: [])
        )
        leases.release(StreamLeases(user: "u", lease: "f", place: "f"))
        #expect(
            try await leases.acquire(user: "u", lease: "g", limit: 2, policy: .refuse, on: loop)
                == .granted(place: "g", ended: [])
        )
        try await group.shutdownGracefully()
    }
}
