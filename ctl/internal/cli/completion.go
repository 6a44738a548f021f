package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
)

// shells are the shells completion can write scripts for.
var shells = []string{"bash", "zsh", "fish"}

// completionCommand is "kickctl completion bash|zsh|fish".
func completionCommand() *command {
	return &command{
		path:    "completion",
		args:    "bash|zsh|fish",
		summary: "Print a shell completion script (source <(kickctl completion bash))",
		words:   shells,
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) != 1 {
					return usagef(nil, "completion needs one shell: bash, zsh or fish")
				}
				m := newCompletionModel()
				switch args[0] {
				case "bash":
					m.bash(e.stdout)
				case "zsh":
					m.zsh(e.stdout)
				case "fish":
					m.fish(e.stdout)
				default:
					return usagef(nil, "completion: unknown shell %q (bash, zsh or fish)", args[0])
				}
				return nil
			}
		},
	}
}

// completeSlugsCommand prints the watched slugs, one a line, for the
// completion scripts; it prints nothing when the collector cannot be reached.
func completeSlugsCommand() *command {
	return &command{
		path:    "__complete-slugs",
		summary: "Print watched slugs for shell completion",
		hidden:  true,
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, args []string) error {
				return e.unary(ctx, "list streamers", func(ctx context.Context, c *kickapi.Conn) error {
					resp, err := c.ListStreamers(ctx, &kickmonv1.ListStreamersRequest{})
					for _, s := range resp.GetStreamers() {
						fmt.Fprintln(e.stdout, s.GetSlug())
					}
					return err
				})
			}
		},
	}
}

// completionModel is what every script completes: words, flags, choices.
type completionModel struct {
	top        []compWord            // nouns and single-word commands
	verbs      map[string][]compWord // noun → verbs
	cmds       []compCmd             // every command, by path
	valueFlags []string              // flags that take a value, e.g. "--socket", "-o"
}

type compWord struct{ word, summary string }

type compCmd struct {
	path  string
	flags []compFlag
	slugs bool
	words []string
}

type compFlag struct {
	name  string // without dashes
	usage string
	value bool // takes a value
}

func (f compFlag) dashed() string {
	if len(f.name) == 1 {
		return "-" + f.name
	}
	return "--" + f.name
}

func newCompletionModel() *completionModel {
	m := &completionModel{verbs: map[string][]compWord{}}
	values := map[string]bool{}
	for _, c := range commands() {
		socket := ""
		fs, _ := c.flagSet(&socket)
		cc := compCmd{path: c.path, slugs: c.slugs, words: c.words}
		fs.VisitAll(func(f *flag.Flag) {
			_, usage := flag.UnquoteUsage(f)
			bf, isBool := f.Value.(interface{ IsBoolFlag() bool })
			cf := compFlag{name: f.Name, usage: usage, value: !isBool || !bf.IsBoolFlag()}
			if cf.value {
				values[cf.dashed()] = true
			}
			cc.flags = append(cc.flags, cf)
		})
		m.cmds = append(m.cmds, cc)
		if c.hidden {
			continue
		}
		if noun, verb, ok := strings.Cut(c.path, " "); ok {
			if _, seen := m.verbs[noun]; !seen {
				m.top = append(m.top, compWord{noun, nounSummaries[noun]})
			}
			m.verbs[noun] = append(m.verbs[noun], compWord{verb, c.summary})
		} else {
			m.top = append(m.top, compWord{c.path, c.summary})
		}
	}
	for f := range values {
		m.valueFlags = append(m.valueFlags, f)
	}
	sort.Strings(m.valueFlags)
	return m
}

// topWords are the words completed after "kickctl".
func (m *completionModel) topWords() []string {
	var w []string
	for _, t := range m.top {
		w = append(w, t.word)
	}
	return w
}

func (m *completionModel) sortedNouns() []string {
	var n []string
	for noun := range m.verbs {
		n = append(n, noun)
	}
	sort.Strings(n)
	return n
}

func verbWords(ws []compWord) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.word)
	}
	return out
}

// positional are the completions of a command's positional arguments, as a
// shell fragment: fixed words, watched slugs, or none.
func (c compCmd) positional(words, slugs func([]string) string) string {
	switch {
	case c.slugs:
		return slugs(nil)
	case c.path == "help":
		return words(nil)
	case len(c.words) > 0:
		return words(c.words)
	}
	return ""
}

// scanWords is the shared logic of the bash and zsh scripts: find the
// command's words among the typed ones, skipping flags and their values.
func (m *completionModel) scanWords(w io.Writer, array, first, stop string) {
	fmt.Fprintf(w, `    local noun="" verb="" socket="" i w
    for ((i=%s; i<%s; i++)); do
        w=${%s[i]}
        case $w in
            --socket) socket=${%s[i+1]}; ((i++)); continue ;;
            %s) ((i++)); continue ;;
            -*) continue ;;
        esac
        if [[ -z $noun ]]; then noun=$w; elif [[ -z $verb ]]; then verb=$w; fi
    done
    local cmd=$noun
    case $noun in
        %s) cmd="$noun $verb" ;;
    esac
`, first, stop, array, array, strings.Join(slices.DeleteFunc(slices.Clone(m.valueFlags), func(s string) bool { return s == "--socket" }), "|"),
		strings.Join(m.sortedNouns(), "|"))
}

// bash writes the bash completion script.
func (m *completionModel) bash(w io.Writer) {
	fmt.Fprint(w, `# bash completion for kickctl.
# Load now:    source <(kickctl completion bash)
# Install:     kickctl completion bash > /etc/bash_completion.d/kickctl

_kickctl() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
`)
	m.scanWords(w, "COMP_WORDS", "1", "COMP_CWORD")
	fmt.Fprintf(w, `    case $prev in
        --socket) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        -o|--output) COMPREPLY=($(compgen -W "table json" -- "$cur")); return ;;
        %s) return ;;
    esac
    local words=""
    case $cmd in
        "") words="%s" ;;
`, strings.Join(m.numberFlags(), "|"), strings.Join(m.topWords(), " "))
	for _, noun := range m.sortedNouns() {
		fmt.Fprintf(w, "        \"%s \") words=\"%s\" ;;\n", noun, strings.Join(verbWords(m.verbs[noun]), " "))
	}
	fmt.Fprint(w, "    esac\n    if [[ $cur == -* ]]; then\n        case $cmd in\n")
	for _, c := range m.cmds {
		var fl []string
		for _, f := range c.flags {
			fl = append(fl, f.dashed())
		}
		fmt.Fprintf(w, "            \"%s\") words=\"%s\" ;;\n", c.path, strings.Join(fl, " "))
	}
	fmt.Fprint(w, "            *) words=\"--socket --help\" ;;\n        esac\n    elif [[ -z $words ]]; then\n        case $cmd in\n")
	for _, c := range m.cmds {
		p := c.positional(
			func(ws []string) string {
				if ws == nil {
					ws = m.topWords()
				}
				return "words=\"" + strings.Join(ws, " ") + "\""
			},
			func([]string) string {
				return `words=$(kickctl ${socket:+--socket "$socket"} __complete-slugs 2>/dev/null)`
			})
		if p != "" {
			fmt.Fprintf(w, "            \"%s\") %s ;;\n", c.path, p)
		}
	}
	fmt.Fprint(w, `        esac
    fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _kickctl kickctl
`)
}

// numberFlags are the value flags other than --socket and -o/--output.
func (m *completionModel) numberFlags() []string {
	return slices.DeleteFunc(slices.Clone(m.valueFlags), func(s string) bool {
		return s == "--socket" || s == "-o" || s == "--output"
	})
}

// zshQuote escapes a "word:description" item for _describe.
func zshItem(word, desc string) string {
	desc = strings.NewReplacer(`:`, `\:`, `'`, `'\''`).Replace(desc)
	return "'" + strings.ReplaceAll(word, ":", `\:`) + ":" + desc + "'"
}

// zsh writes the zsh completion script.
func (m *completionModel) zsh(w io.Writer) {
	fmt.Fprint(w, `#compdef kickctl
# zsh completion for kickctl.
# Load now:    source <(kickctl completion zsh)
# Install:     kickctl completion zsh > "${fpath[1]}/_kickctl"   (then start a new shell)

_kickctl() {
`)
	m.scanWords(w, "words", "2", "CURRENT")
	fmt.Fprintf(w, `    case ${words[CURRENT-1]} in
        --socket) _files; return ;;
        -o|--output) compadd table json; return ;;
        %s) _message 'number'; return ;;
    esac
    local -a items
    case $cmd in
        "")
            items=(`, strings.Join(m.numberFlags(), "|"))
	for _, t := range m.top {
		fmt.Fprintf(w, "\n                %s", zshItem(t.word, t.summary))
	}
	fmt.Fprint(w, "\n            )\n            _describe 'command' items; return ;;\n")
	for _, noun := range m.sortedNouns() {
		fmt.Fprintf(w, "        \"%s \")\n            items=(", noun)
		for _, v := range m.verbs[noun] {
			fmt.Fprintf(w, "\n                %s", zshItem(v.word, v.summary))
		}
		fmt.Fprint(w, "\n            )\n            _describe 'verb' items; return ;;\n")
	}
	fmt.Fprint(w, "    esac\n    if [[ $PREFIX == -* ]]; then\n        case $cmd in\n")
	for _, c := range m.cmds {
		fmt.Fprintf(w, "            \"%s\") items=(", c.path)
		for _, f := range c.flags {
			fmt.Fprintf(w, "\n                %s", zshItem(f.dashed(), f.usage))
		}
		fmt.Fprint(w, "\n            ) ;;\n")
	}
	fmt.Fprint(w, "        esac\n        _describe 'flag' items\n        return\n    fi\n    case $cmd in\n")
	for _, c := range m.cmds {
		p := c.positional(
			func(ws []string) string {
				if ws == nil {
					ws = m.topWords()
				}
				return "compadd " + strings.Join(ws, " ")
			},
			func([]string) string {
				return `items=(${(f)"$(kickctl ${socket:+--socket "$socket"} __complete-slugs 2>/dev/null)"}); compadd -a items`
			})
		if p != "" {
			fmt.Fprintf(w, "        \"%s\") %s ;;\n", c.path, p)
		}
	}
	fmt.Fprint(w, `    esac
}

if [[ ${funcstack[1]} == _kickctl ]]; then
    _kickctl "$@"
else
    compdef _kickctl kickctl
fi
`)
}

// fishQuote quotes s for fish single quotes.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// fish writes the fish completion script.
func (m *completionModel) fish(w io.Writer) {
	fmt.Fprint(w, `# fish completion for kickctl.
# Load now:    kickctl completion fish | source
# Install:     kickctl completion fish > ~/.config/fish/completions/kickctl.fish

function __kickctl_slugs
    set -l args (commandline -opc)
    set -l socket
    for i in (seq (count $args))
        if test "$args[$i]" = --socket; and test $i -lt (count $args)
            set socket --socket $args[(math $i + 1)]
        end
    end
    kickctl $socket __complete-slugs 2>/dev/null
end

# __kickctl_words: the words typed so far after kickctl, without flags and their values.
function __kickctl_words
    set -l skip 0
    for w in (commandline -opc)[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        switch $w
`)
	fmt.Fprintf(w, "            case %s\n                set skip 1\n", strings.Join(m.valueFlags, " "))
	fmt.Fprint(w, `            case '-*'
            case '*'
                echo $w
        end
    end
end

# __kickctl_is WORDS...: exactly these words were typed.
function __kickctl_is
    set -l words (__kickctl_words)
    test "$words" = "$argv"
end

# __kickctl_in WORDS...: the typed words start with these (a command and its arguments).
function __kickctl_in
    set -l words (__kickctl_words)
    test (count $words) -ge (count $argv); and test "$words[1..(count $argv)]" = "$argv"
end

complete -c kickctl -f
complete -c kickctl -l socket -r -F -d 'collector socket (env KICKMON_SOCKET)'
`)
	for _, t := range m.top {
		fmt.Fprintf(w, "complete -c kickctl -n '__kickctl_is' -a %s -d %s\n", t.word, fishQuote(t.summary))
	}
	for _, noun := range m.sortedNouns() {
		for _, v := range m.verbs[noun] {
			fmt.Fprintf(w, "complete -c kickctl -n '__kickctl_is %s' -a %s -d %s\n", noun, v.word, fishQuote(v.summary))
		}
	}
	for _, c := range m.cmds {
		cond := fishQuote("__kickctl_in " + c.path)
		for _, f := range c.flags {
			if f.name == "socket" {
				continue
			}
			opt := "-l " + f.name
			if len(f.name) == 1 {
				opt = "-s " + f.name
			}
			switch {
			case f.name == "o" || f.name == "output":
				opt += " -x -a 'table json'"
			case f.value:
				opt += " -x"
			}
			fmt.Fprintf(w, "complete -c kickctl -n %s %s -d %s\n", cond, opt, fishQuote(f.usage))
		}
		p := c.positional(
			func(ws []string) string {
				if ws == nil {
					ws = m.topWords()
				}
				return fishQuote(strings.Join(ws, " "))
			},
			func([]string) string { return "'(__kickctl_slugs)'" })
		if p != "" {
			fmt.Fprintf(w, "complete -c kickctl -n %s -a %s\n", cond, p)
		}
	}
}
