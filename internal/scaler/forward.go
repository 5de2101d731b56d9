package scaler

import (
	"bytes"
	"io"
	"net/http"
	"sync"
)

// hopHeaders are not forwarded (RFC 9110 section 7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// releasingBody frees its instance once the response body is closed.
type releasingBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

// setBody makes body r's replayable body.
func setBody(r *http.Request, body []byte) {
	r.ContentLength = int64(len(body))
	r.Body, r.GetBody = http.NoBody, nil
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
}

// copyBufs are copyFlush's buffers: one allocated per response was the
// engine's largest garbage per job (32 KiB, for answers of a few bytes).
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyFlush copies a response body, flushing each chunk when the length
// is unknown (a stream).
func copyFlush(w http.ResponseWriter, r io.Reader, stream bool) (int64, error) {
	var f http.Flusher
	if stream {
		f, _ = w.(http.Flusher)
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var n int64
	for {
		k, err := r.Read(buf)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
			if f != nil {
				f.Flush()
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
