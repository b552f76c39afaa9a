module example.com/ko-hello

go 1.22
