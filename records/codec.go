package records

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec is a batch's compression, as the low three bits of its attributes
// name it.
type Codec int8

// The codecs Kafka defines, by their attribute values.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

// attrCodec masks a batch's codec in its attributes.
const attrCodec = 0x07

// MaxDecompressed bounds what one batch's records may decompress to. Kafka
// stores no uncompressed size, so a hostile producer can send a few
// kilobytes that expand without end; decompression stops here, having
// allocated at most this much.
const MaxDecompressed = 64 << 20

// ErrTooLarge reports a batch whose records decompress to more than
// MaxDecompressed bytes.
var ErrTooLarge = errors.New("records: batch decompresses to more than 64 MiB")

var codecNames = [...]string{"none", "gzip", "snappy", "lz4", "zstd"}

// ParseCodec reads a codec's name as configuration files spell it: none,
// gzip, snappy, lz4 or zstd.
func ParseCodec(s string) (Codec, error) {
	for i, name := range codecNames {
		if s == name {
			return Codec(i), nil
		}
	}
	return 0, fmt.Errorf("records: unknown compression %q (want none, gzip, snappy, lz4 or zstd)", s)
}

func (c Codec) String() string {
	if c.known() {
		return codecNames[c]
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

func (c Codec) known() bool { return c >= CodecNone && c <= CodecZstd }

// Scratch buffers for decompression and encoding. A batch's records are
// decompressed into one, then copied into a buffer of exactly their size
// that the decoded records keep; the scratch goes back for the next batch.
// Buffers grown past maxPooled are dropped rather than kept for everyone.
var scratchPool = sync.Pool{New: func() any { return new([]byte) }}

const maxPooled = 8 << 20

func getScratch() *[]byte { return scratchPool.Get().(*[]byte) }

func putScratch(p *[]byte, b []byte) {
	if cap(b) > maxPooled {
		b = nil
	}
	*p = b[:0]
	scratchPool.Put(p)
}

// decompress returns src decompressed into a buffer of its own, which the
// caller keeps: nothing else ever writes to it.
func decompress(c Codec, src []byte) ([]byte, error) {
	if c == CodecSnappy {
		// Snappy states its decoded length up front, so the result is
		// allocated once at its size without a scratch copy.
		return unsnappy(src)
	}
	p := getScratch()
	var out []byte
	var err error
	switch c {
	case CodecGzip:
		out, err = gunzip(src, *p)
	case CodecLZ4:
		out, err = unlz4(src, *p)
	case CodecZstd:
		out, err = unzstd(src, *p)
	default:
		err = fmt.Errorf("unknown codec %d", int8(c))
	}
	var kept []byte
	if err == nil {
		kept = make([]byte, len(out))
		copy(kept, out)
	}
	putScratch(p, out)
	return kept, err
}

// compress appends src compressed with c to dst.
func compress(c Codec, dst, src []byte) ([]byte, error) {
	switch c {
	case CodecGzip:
		return gzipAppend(dst, src)
	case CodecSnappy:
		return xerialAppend(dst, src), nil
	case CodecLZ4:
		return lz4Append(dst, src)
	case CodecZstd:
		enc, err := zstdEncoder()
		if err != nil {
			return dst, err
		}
		return enc.EncodeAll(src, dst), nil
	}
	return dst, fmt.Errorf("records: unknown codec %d", int8(c))
}

// readBounded reads r to its end into buf's memory, growing it up to
// MaxDecompressed and no further: one byte more is ErrTooLarge. hint is
// the size to grow to first.
func readBounded(r io.Reader, buf []byte, hint int) ([]byte, error) {
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			// Full: a byte more, or the end? Reading one byte before
			// growing keeps an exact fit from costing an allocation,
			// and the bound from being passed.
			var probe [1]byte
			switch n, err := io.ReadFull(r, probe[:]); {
			case err == io.EOF:
				return buf, nil
			case err != nil:
				return buf, err
			case len(buf) >= MaxDecompressed:
				return buf, ErrTooLarge
			case n == 1:
				grown := make([]byte, len(buf), min(max(2*cap(buf), hint, 64<<10), MaxDecompressed))
				copy(grown, buf)
				buf = append(grown, probe[0])
			}
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), MaxDecompressed)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// expansionHint is a first guess at what src decompresses to, so that
// typical batches grow their scratch once at most.
func expansionHint(src []byte) int { return min(8*len(src), MaxDecompressed) }

// gzip. Readers and writers are pooled with what they read from or write
// to, so a batch allocates none of them.

type gzipReader struct {
	src bytes.Reader
	zr  gzip.Reader
}

var gzipReaders = sync.Pool{New: func() any { return new(gzipReader) }}

func gunzip(src, buf []byte) ([]byte, error) {
	r := gzipReaders.Get().(*gzipReader)
	defer gzipReaders.Put(r)
	defer r.src.Reset(nil) // the pool must not keep the batch alive
	r.src.Reset(src)
	if err := r.zr.Reset(&r.src); err != nil {
		return buf, err
	}
	return readBounded(&r.zr, buf, gzipHint(src))
}

// gzipHint is the size a gzip stream states in its trailer (modulo 4 GiB,
// and of its last member only), bounded by deflate's largest expansion,
// about 1032 to 1, so a lie costs no more than the data could.
func gzipHint(src []byte) int {
	if len(src) < 18 {
		return expansionHint(src)
	}
	size := int(binary.LittleEndian.Uint32(src[len(src)-4:]))
	return min(size, 1032*len(src), MaxDecompressed)
}

// appender is an io.Writer appending to a slice.
type appender struct{ b []byte }

func (a *appender) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

type gzipWriter struct {
	out appender
	zw  *gzip.Writer
}

var gzipWriters = sync.Pool{New: func() any {
	w := new(gzipWriter)
	w.zw, _ = gzip.NewWriterLevel(&w.out, gzip.DefaultCompression) // the default level is always valid
	return w
}}

func gzipAppend(dst, src []byte) ([]byte, error) {
	w := gzipWriters.Get().(*gzipWriter)
	defer gzipWriters.Put(w)
	w.out.b = dst
	w.zw.Reset(&w.out)
	_, err := w.zw.Write(src)
	if err == nil {
		err = w.zw.Close()
	}
	dst, w.out.b = w.out.b, nil
	return dst, err
}

// lz4: Kafka's LZ4 is the LZ4 frame format (magic 2 batches; the broken
// header checksum of magic 0 is not ours to read).

type lz4Reader struct {
	src bytes.Reader
	zr  *lz4.Reader
}

var lz4Readers = sync.Pool{New: func() any {
	r := new(lz4Reader)
	r.zr = lz4.NewReader(&r.src)
	return r
}}

func unlz4(src, buf []byte) ([]byte, error) {
	r := lz4Readers.Get().(*lz4Reader)
	defer lz4Readers.Put(r)
	defer r.src.Reset(nil)
	r.src.Reset(src)
	r.zr.Reset(&r.src)
	return readBounded(r.zr, buf, expansionHint(src))
}

type lz4Writer struct {
	out appender
	zw  *lz4.Writer
}

var lz4Writers = sync.Pool{New: func() any {
	w := new(lz4Writer)
	w.zw = lz4.NewWriter(&w.out)
	// 64 KiB blocks, as the Java producer writes them: every reader
	// holds one block in memory, and 4 MiB (the library's default) is a
	// lot to ask of each consumer.
	_ = w.zw.Apply(lz4.BlockSizeOption(lz4.Block64Kb)) // a fresh writer takes options
	return w
}}

func lz4Append(dst, src []byte) ([]byte, error) {
	w := lz4Writers.Get().(*lz4Writer)
	defer lz4Writers.Put(w)
	w.out.b = dst
	w.zw.Reset(&w.out) // keeps the block size
	_, err := w.zw.Write(src)
	if err == nil {
		err = w.zw.Close()
	}
	dst, w.out.b = w.out.b, nil
	return dst, err
}

// zstd: one decoder and one encoder for the process. DecodeAll and
// EncodeAll are safe for concurrent use and keep their state per call.

var zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil,
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(MaxDecompressed),
		// DecodeAll writes only into the capacity it is given, so the
		// output grows under our control (unzstd) and never by the
		// decoder's own appends past the bound.
		zstd.WithDecodeAllCapLimit(true),
	)
})

var zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	// A 1 MiB window: Kafka batches are rarely larger (the default
	// max.message.bytes is 1 MiB), and each concurrent encode holds one.
	return zstd.NewWriter(nil, zstd.WithWindowSize(1<<20))
})

func unzstd(src, buf []byte) ([]byte, error) {
	dec, err := zstdDecoder()
	if err != nil {
		return buf, err
	}
	want := expansionHint(src)
	var h zstd.Header
	if h.Decode(src) == nil && h.HasFCS && h.FrameContentSize <= MaxDecompressed {
		// The first frame's stated size; a lie is caught by the
		// decoder, and costs at most the bound.
		want = max(want, int(h.FrameContentSize))
	}
	for {
		if cap(buf) < want {
			buf = make([]byte, 0, want)
		}
		out, err := dec.DecodeAll(src, buf[:0])
		if !errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return out, err
		}
		if cap(buf) >= MaxDecompressed {
			return buf, ErrTooLarge
		}
		// Too small: decode again into four times the room. The
		// retries add at most a third to the work, and a pooled
		// scratch soon fits the batches it sees.
		want = min(4*cap(buf), MaxDecompressed)
	}
}

// snappy. The Java producer writes the xerial framing: a 16-byte header,
// then blocks, each a 4-byte big-endian length and a raw snappy block.
// Other clients write one raw snappy block. Both are read.

var xerialMagic = []byte("\x82SNAPPY\x00")

// xerialHeader is the magic, then version 1 and minimum compatible
// version 1, which the Java reader requires.
var xerialHeader = append(append([]byte(nil), xerialMagic...), 0, 0, 0, 1, 0, 0, 0, 1)

// xerialBlock is the uncompressed size of the Java producer's blocks.
const xerialBlock = 32 << 10

// decompressInto returns src decompressed into buf, grown when it is too
// small: the caller's to reuse, nothing kept.
func decompressInto(c Codec, src, buf []byte) ([]byte, error) {
	switch c {
	case CodecSnappy:
		if len(src) >= len(xerialHeader) && bytes.Equal(src[:len(xerialMagic)], xerialMagic) {
			return unxerial(src[len(xerialHeader):])
		}
		n, err := snappy.DecodedLen(src)
		if err != nil {
			return nil, err
		}
		if n > MaxDecompressed {
			return nil, ErrTooLarge
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		return snappy.Decode(buf[:n], src)
	case CodecGzip:
		return gunzip(src, buf[:0])
	case CodecLZ4:
		return unlz4(src, buf[:0])
	case CodecZstd:
		return unzstd(src, buf[:0])
	}
	return nil, fmt.Errorf("unknown codec %d", int8(c))
}

func unsnappy(src []byte) ([]byte, error) {
	if len(src) >= len(xerialHeader) && bytes.Equal(src[:len(xerialMagic)], xerialMagic) {
		return unxerial(src[len(xerialHeader):])
	}
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return nil, err
	}
	if n > MaxDecompressed {
		return nil, ErrTooLarge
	}
	return snappy.Decode(make([]byte, n), src)
}

var errXerial = errors.New("snappy: malformed xerial framing")

func unxerial(src []byte) ([]byte, error) {
	// Sum the blocks' stated sizes first, reading only their headers,
	// so the output is bounded and allocated once.
	total := 0
	for rest := src; len(rest) > 0; {
		if len(rest) < 4 {
			return nil, errXerial
		}
		size := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(size) > uint64(len(rest)) {
			return nil, errXerial
		}
		n, err := snappy.DecodedLen(rest[:size])
		if err != nil {
			return nil, err
		}
		if total += n; total > MaxDecompressed {
			return nil, ErrTooLarge
		}
		rest = rest[size:]
	}
	out := make([]byte, total)
	at := 0
	for len(src) > 0 {
		size := binary.BigEndian.Uint32(src)
		block := src[4 : 4+size]
		src = src[4+size:]
		n, _ := snappy.DecodedLen(block) // read above
		got, err := snappy.Decode(out[at:at+n], block)
		if err != nil {
			return nil, err
		}
		if len(got) != n {
			return nil, errXerial
		}
		at += n
	}
	return out, nil
}

// xerialAppend appends src to dst framed as the Java producer frames it.
func xerialAppend(dst, src []byte) []byte {
	dst = append(dst, xerialHeader...)
	for len(src) > 0 {
		chunk := src[:min(len(src), xerialBlock)]
		src = src[len(chunk):]
		at := len(dst)
		bound := snappy.MaxEncodedLen(len(chunk))
		dst = append(dst, make([]byte, 4+bound)...)
		block := snappy.Encode(dst[at+4:], chunk) // encodes in place: the room is there
		binary.BigEndian.PutUint32(dst[at:], uint32(len(block)))
		dst = dst[:at+4+len(block)]
	}
	return dst
}
