package kickapi

import (
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorDomain is the ErrorInfo domain of kickmon's error reasons.
const ErrorDomain = "kickmon.v1"

// ReasonLogChanged is the ErrorInfo reason of the FAILED_PRECONDITION a
// collector answers to a request naming another event log
// (WatchEventsRequest.log_id, AckEventsRequest.log_id): the caller's seqs
// mean nothing in the collector's log.
const ReasonLogChanged = "LOG_CHANGED"

// MetaLogID is the ErrorInfo metadata key holding the collector's log id.
const MetaLogID = "log_id"

// HeaderLogID is the response header a collector sends as soon as a
// WatchEvents stream is accepted, before any event: the log id. A client
// learns from it that it is subscribed (even to an idle log) and which log
// it follows.
const HeaderLogID = "kickmon-log-id"

// LogChangedError is the answer to a request for log want from a collector
// whose log is have.
func LogChangedError(want, have string) error {
	st := status.Newf(codes.FailedPrecondition,
		"event log %s is not this collector's (its log is %s: its spool was replaced); your seqs do not apply here", want, have)
	st, err := st.WithDetails(&errdetails.ErrorInfo{
		Reason:   ReasonLogChanged,
		Domain:   ErrorDomain,
		Metadata: map[string]string{MetaLogID: have},
	})
	if err != nil {
		return errors.New("kickapi: attach ErrorInfo: " + err.Error())
	}
	return st.Err()
}

// LogChanged reports whether err is a LOG_CHANGED answer and, if the
// collector said, its current log id.
func LogChanged(err error) (current string, ok bool) {
	st, isStatus := status.FromError(err)
	if !isStatus || st.Code() != codes.FailedPrecondition {
		return "", false
	}
	for _, d := range st.Details() {
		if info, isInfo := d.(*errdetails.ErrorInfo); isInfo && info.GetReason() == ReasonLogChanged && info.GetDomain() == ErrorDomain {
			return info.GetMetadata()[MetaLogID], true
		}
	}
	return "", false
}
