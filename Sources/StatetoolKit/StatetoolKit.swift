/// What every statetool command does, as a library: inputs opened and told
/// apart once, the back-ends' payloads behind one protocol, outputs written,
/// verified and put in place, and results that are their own JSON.
///
/// The `statetool` executable parses arguments, calls one function of this
/// module per command and renders what it returns; a Swift program gets the
/// same results by calling the same functions.
public enum StatetoolKit {}
