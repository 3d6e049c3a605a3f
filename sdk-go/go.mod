module github.com/gantry-dev/gantry/sdk-go

go 1.22
