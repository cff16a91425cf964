//go:build benchcdaemon

package weight

// In the cdaemon programs the weighted package uses cdaemon, as a
// program's own packages do when they call its API: Go then runs
// cdaemon's init first, and with CDAEMON_WAIT=start the launcher is
// released before this package's init runs. (Without the import, Go's
// init order, by import path among the packages that are ready, may run
// this init first.)
import _ "github.com/cdaemon/cdaemon"
