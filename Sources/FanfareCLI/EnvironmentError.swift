/// A variable that cannot be read as its option.
struct EnvironmentError: Error, CustomStringConvertible {
    var message: String
    var description: String { self.message }
}
