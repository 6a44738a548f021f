module github.com/kickmon/kickmon/collector

go 1.26

require github.com/kickmon/kickmon/proto v0.0.0

replace github.com/kickmon/kickmon/proto => ../proto
