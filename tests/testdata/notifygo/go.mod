module github.com/cdaemon/cdaemon/tests/testdata/notifygo

go 1.26.0

require (
	github.com/cdaemon/cdaemon v0.0.0
	github.com/coreos/go-systemd/v22 v22.7.0
)

require golang.org/x/sys v0.50.0 // indirect

replace github.com/cdaemon/cdaemon => ../../..
