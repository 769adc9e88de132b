// Package servicedir reads and writes the files of an s6 service
// directory that more than one applet touches: the 35-byte
// supervise/status file ([Status]), the supervise/death_tally records
// ([Death]) and the one-number and one-signal configuration files
// ([ParseNumber], [ParseSignal]). Byte layouts are s6 2.11's
// (spec/supervise.md §0-§2), so real s6 tools and gotools read each
// other's files.
//
// It also holds the waiting engine that svwait and svc -w share ([Watch]):
// subscribe to each event fifodir, read each status, then follow events
// until the wanted state. It deliberately holds no supervisor state
// machine: supervise owns the service.
package servicedir
