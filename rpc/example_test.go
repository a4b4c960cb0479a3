package rpc_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/parallax-ipc/parallax/rpc"
)

// Serve "upper": every request is answered with its bytes in upper case.
func ExampleServer() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := rpc.NewServer(ctx, "upper", rpc.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	for {
		req, err := s.Receive(ctx)
		if err != nil {
			return // ctx ended
		}
		in := req.Bytes()
		ch, err := s.Loan(len(in))
		if err == nil {
			for i, b := range in {
				if 'a' <= b && b <= 'z' {
					b -= 'a' - 'A'
				}
				ch.Bytes()[i] = b
			}
			err = s.Send(ctx, req, &ch, true)
		}
		if err != nil {
			log.Print(err)
		}
		_ = req.Release()
	}
}

// Call "upper" once, with a deadline.
func ExampleClient_Call() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := rpc.NewClient(ctx, "upper", rpc.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitForServers(ctx, 1); err != nil {
		log.Fatal(err)
	}
	r, err := c.Call(ctx, []byte("hello"))
	if err != nil {
		log.Fatal(err) // errors.Is(err, rpc.ErrServerGone), parallax.ErrTimeout, ...
	}
	fmt.Printf("%s\n", r.Bytes())
	_ = r.Release()
}

// Read a stream of responses until the server ends it.
func ExampleStream() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := rpc.NewClient(ctx, "count", rpc.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ch, err := c.Loan(1)
	if err != nil {
		log.Fatal(err)
	}
	ch.Bytes()[0] = 10 // ask for ten responses
	st, err := c.Start(ctx, &ch)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	for {
		r, err := st.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("response %v\n", r.Bytes())
		end := r.End()
		_ = r.Release()
		if end {
			return
		}
	}
}
