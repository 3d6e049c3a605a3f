module github.com/gantry-dev/gantry/bench/modules/go

go 1.22

require github.com/gantry-dev/gantry/sdk-go v0.0.0

replace github.com/gantry-dev/gantry/sdk-go => ../../../sdk-go
