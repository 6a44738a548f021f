package cli

import (
	"fmt"
	"io"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"google.golang.org/protobuf/proto"
)

// resultLines says how to print the per-slug results of a mutating call.
type resultLines struct {
	verb    string // "add", for failures: cannot add "x": …
	done    string // "added", for successes: added x (user 1)
	same    string // for unchanged results: already watched x (user 1)
	summary bool   // print one count line for the successes instead of one line each
}

// printResults prints resp (all results, as JSON, for -o json) or one line per
// success to stdout, and one line per failed slug to stderr. It returns
// errReported if any slug failed, so the exit code is 1.
func (e *env) printResults(out outputFormat, resp proto.Message, results []*kickmonv1.StreamerResult, how resultLines) error {
	if out == formatJSON {
		if err := writeJSON(e.stdout, resp); err != nil {
			return err
		}
	}
	ok, failed := 0, 0
	for _, r := range results {
		if r.GetError() != "" {
			failed++
			fmt.Fprintf(e.stderr, "kickctl: cannot %s %q: %s\n", how.verb, r.GetSlug(), r.GetError())
			continue
		}
		ok++
		if out == formatJSON || how.summary {
			continue
		}
		word := how.done
		if r.GetUnchanged() && how.same != "" {
			word = how.same
		}
		printResult(e.stdout, word, r)
	}
	if how.summary && out != formatJSON {
		fmt.Fprintf(e.stdout, "%s %d streamer%s\n", how.done, ok, plural(ok))
	}
	if failed > 0 {
		return errReported
	}
	return nil
}

func printResult(w io.Writer, word string, r *kickmonv1.StreamerResult) {
	s := r.GetStreamer()
	slug := r.GetSlug()
	if s.GetSlug() != "" && s.GetSlug() != slug {
		slug += " (now " + s.GetSlug() + ")"
	}
	switch {
	case s.GetBroadcasterUserId() == 0:
		fmt.Fprintf(w, "%s %s\n", word, slug)
	case s.GetChannelId() != 0:
		fmt.Fprintf(w, "%s %s (user %d, channel %d)\n", word, slug, s.GetBroadcasterUserId(), s.GetChannelId())
	default:
		fmt.Fprintf(w, "%s %s (user %d)\n", word, slug, s.GetBroadcasterUserId())
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
