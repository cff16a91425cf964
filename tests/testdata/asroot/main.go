// Command asroot is README's "Starting as root" example: an HTTPS server
// in the nginx model. Root's launcher binds the port (CDAEMON_LISTEN) and
// root's shell opens the certificate and key (descriptor 4, kept with
// CDAEMON_KEEP_FDS=4); the daemon then runs as nobody (CDAEMON_USER),
// reads the key from the descriptor it was given and serves.
package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/cdaemon/cdaemon"
)

func main() {
	pem, err := io.ReadAll(os.NewFile(4, "site.pem")) // opened as root, before the drop
	if err != nil {
		cdaemon.Fail(err)
	}
	cert, err := tls.X509KeyPair(pem, pem)
	if err != nil {
		cdaemon.Fail(err)
	}
	ls, err := cdaemon.Listeners() // bound as root: port 443 needs no capability
	if err != nil || len(ls) != 1 {
		cdaemon.Fail(errors.Join(errors.New("want one CDAEMON_LISTEN address"), err))
	}
	srv := &http.Server{
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from pid %d, uid %d\n", os.Getpid(), os.Getuid())
		}),
	}
	cdaemon.Ready()
	srv.ServeTLS(ls[0], "", "")
}
