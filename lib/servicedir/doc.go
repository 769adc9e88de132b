// Package servicedir reads and writes the files of an s6 service
// directory that more than one applet touches: the 35-byte
// supervise/status file ([Status]), the supervise/death_tally records
// ([Death]) and the one-number and one-signal configuration files
// ([ParseNumber], [ParseSignal]). Byte layouts are s6 2.11's
// (spec/supervise.md §0-§2), so real s6 tools and gotools read each
// other's files.
//
// It deliberately holds no state machine and opens no fifo: supervise owns
// the service, svc/svstat/svok/svwait only read or write these formats.
package servicedir
