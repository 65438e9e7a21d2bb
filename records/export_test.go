package records

// Compress lets the tests build compressed payloads that EncodeBatch
// refuses to, such as records past the decompression bound.
var Compress = compress
