// Package compile is the one compile path from CorsPolicy objects to a
// policy table, shared by the Kubernetes controller and the file source:
// validate each object with the engine, keep serving an object's last valid
// spec when an edit breaks it, build the table, and say per object what
// happened. By job:
//
//   - spec.go: translating one CorsPolicy spec into an engine policy and a
//     table entry (Compile, Config).
//   - build.go: building the table from every object (Builder, Result:
//     last valid specs, conflicts, serving state); pipeline.go: build,
//     accept, swap, report (Pipeline), the step both sources share.
//   - attachment.go: Gateway API attachment, pure functions over the
//     Gateway API types (ResolveRoute, ResolveGateway, hostname
//     intersection, GatewayClasses); attachment_build.go: how a build turns
//     a targetRefs policy's attachments into entries and status.ancestors.
//   - grants.go: host grants (Ownership: Admit for hosts policies, Grant
//     for attachments; NotGrantedError).
package compile
