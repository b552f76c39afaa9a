// A tiny HTTP server for bench/ko-vs-native.sh: GET / answers "hello".
package main

import (
	"log"
	"net/http"
	"os"
)

func main() {
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = ":8080"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello\n"))
	})
	log.Fatal(http.ListenAndServe(addr, nil))
}
