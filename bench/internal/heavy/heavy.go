//go:build benchbig

package heavy

import (
	"crypto/tls"
	"database/sql"
	_ "embed"
	"encoding/json"
	"encoding/xml"
	"go/parser"
	"go/token"
	"go/types"
	htmltemplate "html/template"
	"image/gif"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/rpc"
	"net/smtp"
	"regexp"
	"text/template"
)

// blob is the generated table. The harness writes blob.bin (random bytes,
// so nothing can shrink it) to its temp dir and passes it with go build
// -overlay, so it never lives in the source tree.
//
//go:embed blob.bin
var blob string

// Sink holds a reference to each package so the linker keeps them.
var Sink []any

func init() {
	Sink = []any{
		tls.Client, sql.Open, json.Marshal, xml.Marshal, parser.ParseFile,
		token.NewFileSet, types.NewPackage, htmltemplate.New, gif.Decode, jpeg.Decode,
		png.Decode, http.ListenAndServe, httptest.NewServer, rpc.Dial, smtp.Dial,
		regexp.MustCompile, template.New, len(blob),
	}
}
