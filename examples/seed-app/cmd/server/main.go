// Command server is the seed pipeline's stand-in service: it prints a
// greeting naming the user it runs as, which is what the pipeline's tests
// check after running the published image.
package main

import (
	"fmt"
	"os"
)

// Greeting is what the service says when run as uid.
func Greeting(uid int) string {
	return fmt.Sprintf("hello from seed-app (uid %d)", uid)
}

func main() {
	fmt.Println(Greeting(os.Getuid()))
}
