package main

import (
	"context"
	"errors"

	"github.com/go-logr/logr"
)

// runKubernetes serves CorsPolicy objects from the API server.
func runKubernetes(ctx context.Context, o options, log logr.Logger) error {
	return errors.New("Kubernetes mode is not built yet: run with --policies PATH (a CorsPolicy YAML file or folder)")
}
