module github.com/kickmon/kickmon/proto

go 1.26
