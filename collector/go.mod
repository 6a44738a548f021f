module github.com/kickmon/kickmon/collector

go 1.26.0

require github.com/gorilla/websocket v1.5.3

replace github.com/kickmon/kickmon/proto => ../proto
