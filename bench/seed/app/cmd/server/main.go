// Command server answers every HTTP request with a greeting.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"

	"example.com/seed/greet"
)

func main() {
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = ":8080"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, greet.Hello(r.URL.Query().Get("name")))
	})
	log.Fatal(http.ListenAndServe(addr, nil))
}
