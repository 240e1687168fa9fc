internal import CHiredis
public import NIOCore

/// Formats Redis commands into RESP with hiredis's `redisFormatCommandArgv`.
///
/// The arguments are laid out in one scratch array so that a single call formats
/// the whole command, then the result is copied into a `ByteBuffer` and freed.
public enum RESPCommandEncoder {
    /// Appends the RESP encoding of `command` and `arguments` to `buffer`.
    ///
    /// - Parameters:
    ///   - command: the command name, for example `"SET"`.
    ///   - arguments: the arguments after the name; any bytes are allowed.
    ///   - buffer: where the encoded command is written.
    public static func encode(_ command: String, arguments: [RESPArgument], into buffer: inout ByteBuffer) {
        var scratch: [UInt8] = []
        scratch.reserveCapacity(command.utf8.count + arguments.count * 16)
        var lengths: [Int] = []
        lengths.reserveCapacity(arguments.count + 1)

        scratch.append(contentsOf: command.utf8)
        lengths.append(scratch.count)
        for argument in arguments {
            let before = scratch.count
            argument.append(to: &scratch)
            lengths.append(scratch.count - before)
        }
        // An empty scratch has no base address; a one-byte pad keeps every pointer valid.
        scratch.append(0)

        scratch.withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { chars in
                guard let base = chars.baseAddress else { return }
                var pointers: [UnsafePointer<CChar>?] = []
                pointers.reserveCapacity(lengths.count)
                var offset = 0
                for length in lengths {
                    pointers.append(base + offset)
                    offset += length
                }
                var target: UnsafeMutablePointer<CChar>? = nil
                let written = pointers.withUnsafeMutableBufferPointer { argv in
                    lengths.withUnsafeBufferPointer { argvlen in
                        redisFormatCommandArgv(&target, Int32(lengths.count), argv.baseAddress, argvlen.baseAddress)
                    }
                }
                defer { if let target { redisFreeCommand(target) } }
                // redisFormatCommandArgv fails only when malloc fails.
                precondition(written >= 0 && target != nil, "redisFormatCommandArgv could not allocate")
                if let target {
                    buffer.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(written)))
                }
            }
        }
    }

    /// The RESP encoding of `command` and `arguments` in a new buffer.
    public static func encode(
        _ command: String,
        arguments: [RESPArgument],
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 64)
        self.encode(command, arguments: arguments, into: &buffer)
        return buffer
    }
}
