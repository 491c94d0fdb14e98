// Package cli holds the operators' tools that the corsgate binary runs as
// subcommands: explain, lint, import, audit and version, one file each. Each
// tool is one function, Run<Tool>(args, stdin, stdout, stderr), returning the
// process's exit status; cmd/corsgate dispatches to them. This file holds
// what they share: flag parsing and the flags that reach a cluster.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ", ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// parseInterleaved parses flags wherever they are among the positional
// arguments, as curl takes `-X OPTIONS URL -H ...`; "--" ends the flags.
//
// It owns fs's messages: --help returns flag.ErrHelp with nothing printed
// (the caller prints the help once, to standard output), and a bad flag
// prints one line and a hint to run --help to fs's output (standard error),
// so that the error stays on screen instead of scrolling away above every
// flag.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.Usage = func() {}
	out := fs.Output()
	fs.SetOutput(io.Discard)
	defer fs.SetOutput(out)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if !errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(out, "%s: %v\nrun '%s --help' for usage\n", fs.Name(), err, fs.Name())
			}
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// clusterFlags are the flags that reach a cluster, kubectl's names. files
// is how the tool reads files instead, for the error that finds no cluster.
type clusterFlags struct {
	kubeconfig, context string
	files               string
}

func (c *clusterFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file; default $KUBECONFIG, then ~/.kube/config, then in-cluster.")
	fs.StringVar(&c.context, "context", "", "The kubeconfig context to use; default its current context.")
}

func (c *clusterFlags) restConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = c.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.context}).ClientConfig()
	if err != nil {
		if ic, icErr := rest.InClusterConfig(); icErr == nil && c.kubeconfig == "" {
			return ic, nil
		}
		return nil, fmt.Errorf("no Kubernetes configuration: %w; pass --kubeconfig, or %s to read files", err, c.files)
	}
	return cfg, nil
}

func (c *clusterFlags) client(scheme *runtime.Scheme) (client.Client, error) {
	cfg, err := c.restConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 30 * time.Second
	return client.New(cfg, client.Options{Scheme: scheme})
}
