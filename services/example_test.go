package services_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/parallax-ipc/parallax/services"
)

// List the services of the default domain's router.
func ExampleList() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := services.List(ctx, services.Options{})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range list {
		fmt.Printf("%s %s %s: %d publishers, %d subscribers, may subscribe: %t\n",
			s.Kind, s.Name, s.Type, len(s.Publishers), len(s.Subscribers), s.CanSubscribe)
	}
}

// Follow the services as they come and go, until the context ends.
func ExampleWatch() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := services.Watch(ctx, services.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	for ev := range w.Events() {
		fmt.Println(ev.Kind, ev.Service.Name, len(ev.Service.Publishers), "publishers")
	}
}

// Wait, without polling, until some process publishes on "camera/front".
func ExampleWaitForPublisher() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := services.WaitForPublisher(ctx, services.Options{}, "camera/front")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("published by pid", s.Publishers[0].PID)
}
