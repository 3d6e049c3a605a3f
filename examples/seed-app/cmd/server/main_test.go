package main

import "testing"

func TestGreeting(t *testing.T) {
	if got, want := Greeting(65532), "hello from seed-app (uid 65532)"; got != want {
		t.Fatalf("Greeting(65532) = %q, want %q", got, want)
	}
}
