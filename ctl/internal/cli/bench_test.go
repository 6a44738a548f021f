package cli

import (
	"fmt"
	"io"
	"testing"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

// tenThousand is a watch list of 10k streamers, the size kickmon is built for.
func tenThousand() *kickmonv1.ListStreamersResponse {
	resp := &kickmonv1.ListStreamersResponse{LastSeq: 1 << 20}
	for i := range 10000 {
		s := alice()
		s.Slug = fmt.Sprintf("streamer%05d", i)
		s.BroadcasterUserId = int64(i + 1)
		resp.Streamers = append(resp.Streamers, s)
	}
	return resp
}

func BenchmarkStreamersListTable10k(b *testing.B) {
	resp := tenThousand()
	e := testEnv("", nil, nil)
	for b.Loop() {
		if err := e.printStreamers(io.Discard, resp.GetStreamers()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStreamersListJSON10k(b *testing.B) {
	resp := tenThousand()
	for b.Loop() {
		if err := writeJSON(io.Discard, resp); err != nil {
			b.Fatal(err)
		}
	}
}
