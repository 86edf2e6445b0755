module ferry.dev/runtime

go 1.24
