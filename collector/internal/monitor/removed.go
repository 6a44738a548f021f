package monitor

import (
	"sort"

	"google.golang.org/protobuf/proto"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
)

// Removed returns the last state of every removed streamer (clones, sorted
// by slug), for listings that include them.
func (m *Monitor) Removed() []*kickmonv1.Streamer {
	out := make([]*kickmonv1.Streamer, 0, len(m.removed))
	for _, s := range m.removed {
		out = append(out, proto.Clone(s).(*kickmonv1.Streamer))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetSlug() < out[j].GetSlug() })
	return out
}
