package observe_test

import (
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/corsgate/corsgate/internal/cors"
)

// parseText reads the text exposition format, as Prometheus scrapes it.
func parseText(resp *http.Response) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

func preflightReq(origin string) *cors.Request {
	return &cors.Request{Method: "OPTIONS", Origin: origin, HasOrigin: true, AccessControlRequestMethod: "PUT"}
}

var _ testing.TB = (*testing.B)(nil)
