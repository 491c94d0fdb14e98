package lint

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/corsgate/corsgate/internal/filesource"
)

// loadFile reads one file with the server's loader. The loader stops at a
// file's first bad document, which is right for a server (the file is
// refused) but would hide the problems of the other documents from a lint:
// when it fails, each document is loaded on its own, by the same loader, so
// that every document is checked and named by its number in the file.
func loadFile(file string) ([]filesource.Object, error) {
	objs, err := filesource.Load(file)
	if err == nil {
		return objs, nil
	}
	data, rerr := os.ReadFile(file)
	if rerr != nil {
		return nil, rerr
	}
	dir, terr := os.MkdirTemp("", "corsgate-lint-doc")
	if terr != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	objs = nil
	var errs []error
	r := yaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for n := 1; ; n++ {
		doc, derr := r.Read()
		if derr == io.EOF {
			break
		}
		if derr != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", n, derr))
			break
		}
		one := filepath.Join(dir, fmt.Sprintf("doc-%d.yaml", n))
		if werr := os.WriteFile(one, doc, 0o600); werr != nil {
			return nil, werr
		}
		got, lerr := filesource.Load(one)
		for _, e := range splitErrors(lerr) {
			msg := strings.TrimPrefix(e.Error(), one+": ")
			msg = strings.Replace(msg, "document 1", fmt.Sprintf("document %d", n), 1)
			errs = append(errs, errors.New(msg))
		}
		for _, o := range got {
			o.File = file
			objs = append(objs, o)
		}
	}
	return objs, errors.Join(errs...)
}
