module github.com/kickmon/kickmon/deploy

go 1.26.0

replace github.com/kickmon/kickmon/proto => ../proto

require github.com/kickmon/kickmon/writer v0.0.0

replace github.com/kickmon/kickmon/writer => ../writer
