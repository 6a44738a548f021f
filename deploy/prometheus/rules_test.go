// Package prometheus_test checks kickmon.rules.yml with Prometheus's own
// rule parser: it loads, every expression parses, and it names only
// metrics README.md documents.
package prometheus_test

import (
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

func TestRules(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.ParseFile("kickmon.rules.yml", false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Alert == "" {
				t.Errorf("group %s: only alerting rules belong here, got record %q", g.Name, r.Record)
				continue
			}
			if time.Duration(r.For) < time.Minute {
				t.Errorf("%s: for %s: a blip must not page", r.Alert, r.For)
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs a summary and a description", r.Alert)
			}
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s: %v", r.Alert, err)
				continue
			}
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok && !strings.Contains(string(readme), "| `"+vs.Name+"` |") {
					t.Errorf("%s: %s is not in README.md's metrics table", r.Alert, vs.Name)
				}
				return nil
			})
		}
	}
	// What an operator must hear about (issue 12).
	for _, want := range []string{"KickmonCollectorBlind", "KickmonWriterBehind", "KickmonSpoolNearFull", "KickmonTokenFailing", "KickmonNoEvents"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s", want)
		}
	}
}
