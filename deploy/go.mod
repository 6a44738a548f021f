module github.com/kickmon/kickmon/deploy

go 1.26.0

replace github.com/kickmon/kickmon/proto => ../proto
