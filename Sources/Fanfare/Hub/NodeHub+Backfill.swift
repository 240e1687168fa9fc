internal import FanfareAPI
internal import Logging
internal import NIOCore
import Synchronization

extension NodeHub {
    /// Where the node is in the stream of events from the bus.
    struct Backfill {
        /// The newest event id handed to the loops.
        var lastID: EventID?
        /// While set, the bus's subscription came back and history is being read: live
        /// frames wait here, then those newer than the backfill follow it.
        var buffered: [(channel: String, frame: ByteBuffer)]?
        /// The subscription dropped and came back again while history was being read:
        /// what was published during that second outage may be in neither the read nor
        /// the buffer, so history is read once more before the buffer is released.
        var readAgain = false
    }

    /// After the bus's subscription was lost and came back: delivers from history every
    /// event published since the last one this node delivered, then the live events that
    /// arrived meanwhile. If history cannot cover the gap, every stream gets `__reset`.
    func backfillAfterReconnect(logger: Logger) {
        let start = self.backfill.withLock { backfill -> EventID? in
            guard let last = backfill.lastID else { return nil }
            if backfill.buffered != nil {
                backfill.readAgain = true  // a read is under way; it reads again when done
                return nil
            }
            backfill.buffered = []
            return last
        }
        guard let start else { return }
        self.readHistory(after: start, logger: logger)
    }

    private func readHistory(after start: EventID, logger: Logger) {
        let channels = Set(self.snapshot().channels.keys)
        let bus = self.bus
        // Called from the bus's callback (a synchronous context); the read is async.
        Task {
            let result: Replay
            do {
                result = try await bus.replay(after: start, channels: channels)
            } catch {
                logger.warning("hub.backfill.failed", metadata: ["error": "\(error)"])
                result = .gap(oldest: nil)
            }
            self.finishBackfill(result, from: start, logger: logger)
        }
    }

    private func finishBackfill(_ result: Replay, from start: EventID, logger: Logger) {
        var deliveries: [(channel: String, frame: ByteBuffer)] = []
        var resetAll = false
        let again = self.backfill.withLock { backfill -> EventID? in
            var last = start
            switch result {
            case .events(let entries):
                for entry in entries where entry.id > last {
                    deliveries.append((entry.channel, entry.frame))
                    last = entry.id
                }
            case .gap:
                resetAll = true
            }
            if backfill.readAgain && !resetAll {
                // Deliver what was read (it follows on from `start` without a gap), keep
                // buffering, and read on from there.
                backfill.readAgain = false
                backfill.lastID = last
                for (channel, frame) in deliveries { self.stage(channel: channel, frame: frame) }
                return last
            }
            backfill.readAgain = false
            for (channel, frame) in backfill.buffered ?? [] {
                guard let id = EventID(frame: frame) else {
                    deliveries.append((channel, frame))
                    continue
                }
                if id > last {
                    deliveries.append((channel, frame))
                    last = id
                }
            }
            backfill.buffered = nil
            backfill.lastID = last
            // Staged under the lock so that no live frame can overtake the backfill.
            if resetAll {
                logger.warning("hub.backfill.gap", metadata: ["from": "\(start)"])
                self.resetAllStreams(from: start)
            }
            for (channel, frame) in deliveries { self.stage(channel: channel, frame: frame) }
            return nil
        }
        if let again {
            logger.info("hub.backfill.again", metadata: ["events": "\(deliveries.count)"])
            self.readHistory(after: again, logger: logger)
            return
        }
        logger.info("hub.backfill.done", metadata: ["events": "\(deliveries.count)"])
    }

    /// Tells every stream that events may be missing (`__reset`), for a gap history
    /// cannot fill.
    private func resetAllStreams(from start: EventID) {
        let frame = ControlFrame.reset(ResetEvent(lastEventId: start.description, oldestEventId: nil, reason: .redis))
        self.forEachStream { hub in
            for stream in hub.allStreams { stream.writeAndFlush(frame) }
        }
    }
}
