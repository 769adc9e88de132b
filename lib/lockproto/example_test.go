//go:build linux

package lockproto_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"syscall"
	"time"

	"github.com/gotools-dev/gotools/lib/lockproto"
)

// Take an exclusive lock from the lockd listening on a socket, waiting at
// most 5 seconds, and release it.
func ExampleDial() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := lockproto.Dial(ctx, "/run/lockd/socket")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close() // lockd releases whatever this client still holds

	l, err := c.Acquire(ctx, "db/main", lockproto.Exclusive)
	if err != nil {
		log.Fatal(err) // context.DeadlineExceeded if it took too long
	}
	select {
	case <-l.Lost():
		log.Fatal(l.Err()) // e.g. the helper holding it was killed
	default:
		fmt.Println("working under the lock")
	}
	if err := l.Release(); err != nil {
		log.Fatal(err)
	}
	// Here the lock is free.
}

// Run a private lockd (this binary in child mode) on a lock directory,
// and try a shared lock without waiting.
func ExampleSpawn() {
	c, err := lockproto.Spawn(context.Background(), "/var/lib/myapp/locks")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close() // also waits for the lockd to exit

	l, err := c.TryAcquire("cache", lockproto.Shared)
	if errors.Is(err, syscall.EBUSY) {
		fmt.Println("someone holds cache exclusively")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	defer l.Release()
	fmt.Println("reading the cache")
}

// Ask for several locks at once and wait for them together.
func ExampleClient_Start() {
	c, err := lockproto.Dial(context.Background(), "@lockd")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	var locks []*lockproto.Lock
	for _, name := range []string{"a", "b", "c"} {
		l, err := c.Start(name, lockproto.Exclusive, time.Second)
		if err != nil {
			log.Fatal(err)
		}
		locks = append(locks, l)
	}
	for _, l := range locks {
		<-l.Done()
		if err := l.Err(); err != nil {
			fmt.Println(err) // lockd acquire b: connection timed out
		}
	}
}

// Print lockd's table.
func ExampleClient_List() {
	c, err := lockproto.Dial(context.Background(), "/run/lockd/socket")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	entries, err := c.List(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range entries {
		fmt.Println(e.PID, e.Mode, e.Held, lockproto.Quote(e.Name))
	}
}
