package v1alpha1

// Gateway API attachment (spec.targetRefs, status.ancestors; GEP-713).
const (
	// ControllerName is the controllerName of the status.ancestors entries
	// corsgate writes; entries of other controllers are left alone.
	ControllerName = "corsgate.io/controller"

	// GatewayGroup is the API group a targetRef must name.
	GatewayGroup = "gateway.networking.k8s.io"
	// KindGateway and KindHTTPRoute are the kinds a targetRef may name.
	KindGateway   = "Gateway"
	KindHTTPRoute = "HTTPRoute"

	// MaxTargetRefs and MaxAncestors bound spec.targetRefs and
	// status.ancestors, as the CRD does.
	MaxTargetRefs = 16
	MaxAncestors  = 16
)
