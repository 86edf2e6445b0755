{{/* The ConfigMap in which the leader keeps what it observed of each spot pool (reclaims, replacements), for the risk model of the next leader. */}}
{{- define "ferry.poolRiskHistoryName" -}}
{{- printf "%s-pool-risk" (include "ferry.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
