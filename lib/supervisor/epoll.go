package supervisor

import (
	"errors"
	"fmt"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/gotools-dev/gotools/lib/sys"
)

// The Loop's epoll set holds every service's own fds: its control FIFO,
// notification pipe, adopted daemon's pidfd and notify socket. Each is a
// file only this process holds, so closing it removes its registration;
// a service's registrations are brought in line with its fds (sync) at
// the end of every turn in which it was touched: an fd number closed and
// reused is registered again (EPOLL_CTL_MOD fails with ENOENT, then ADD).
// Every removal of the turn happens before any addition, so that one
// service's stale number never removes another's new registration.

// epollInit creates the epoll set at the start of Run; every service is
// registered again.
func (l *Loop) epollInit() error {
	if l.epOpen {
		return nil
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("unable to create an epoll set: %w", sys.Errno(err))
	}
	l.ep, l.epOpen = ep, true
	if l.events == nil {
		l.events = make([]unix.EpollEvent, 64)
	}
	if l.byID == nil {
		l.initMaps()
	}
	for _, s := range l.services {
		s.watched = s.watched[:0]
		s.touch()
	}
	return nil
}

func (l *Loop) initMaps() {
	l.byID = map[uint64]*Service{}
	l.timed = map[*Service]struct{}{}
	l.stores = map[*Service]struct{}{}
	l.notifiers = map[*Service]struct{}{}
}

// epollClose closes the epoll set when Run returns.
func (l *Loop) epollClose() {
	if l.epOpen {
		unix.Close(l.ep)
		l.epOpen = false
	}
}

// touch marks the service for a sync at the end of the turn: every entry
// point into a service touches it.
func (s *Service) touch() {
	if s.loop != nil && !s.touched {
		s.touched = true
		s.loop.touched = append(s.loop.touched, s)
	}
}

// watchFDs are the service's fds for the epoll set.
func (s *Service) watchFDs(fds []int) []int {
	for _, fd := range []int{s.ctlR, s.notif, s.store.sock} {
		if fd >= 0 {
			fds = append(fds, fd)
		}
	}
	if s.daemon != nil {
		fds = append(fds, s.daemon.Fd())
	}
	return fds
}

// syncTouched syncs every service touched since the last sync: first
// the ends (a service down in a LAST state), then every removal, then
// every addition.
func (l *Loop) syncTouched() {
	if !l.epOpen {
		return
	}
	for i := 0; i < len(l.touched); i++ {
		if s := l.touched[i]; s.quit && !s.ended {
			s.end(nil) // may open or end others: they are appended
		}
	}
	for _, s := range l.touched {
		want := []int(nil)
		if !s.ended {
			want = s.watchFDs(l.want[:0])
			l.want = want
		}
		for _, fd := range s.watched {
			if !slices.Contains(want, fd) {
				// Closed already (ENOENT, EBADF) unless dropped while open.
				_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, fd, nil)
			}
		}
		s.watched = append(s.watched[:0], want...)
	}
	for _, s := range l.touched {
		s.touched = false
		if s.ended {
			s.watched = nil
			delete(l.byID, s.id)
			delete(l.timed, s)
			delete(l.stores, s)
			delete(l.notifiers, s)
			continue
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(uint32(s.id)), Pad: int32(uint32(s.id >> 32))}
		for _, fd := range s.watched {
			err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, fd, &ev)
			if errors.Is(err, unix.ENOENT) {
				err = unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &ev)
			}
			if err != nil && s.env != nil {
				s.env.Warnf("unable to watch fd %d: %w", fd, sys.Errno(err))
			}
		}
		member(l.timed, s, !s.next().IsZero())
		member(l.stores, s, s.store.watched())
		member(l.notifiers, s, s.store.sock >= 0)
	}
	clear(l.touched)
	l.touched = l.touched[:0]
}

func member(m map[*Service]struct{}, s *Service, in bool) {
	if in {
		m[s] = struct{}{}
	} else {
		delete(m, s)
	}
}
