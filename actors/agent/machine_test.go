package agent

import (
	"testing"

	"github.com/shoalrt/shoal/messages"
)

func registered(t *testing.T) *Machine {
	t.Helper()
	m := New("a1")
	fx := m.Register(&messages.Register{ExecutorID: "a1"})
	if len(fx.Send) != 1 {
		t.Fatalf("register sends %d messages, want 1", len(fx.Send))
	}
	m.RegisteredReply(&messages.Registered{})
	return m
}

func tasks(ids ...uint64) []messages.Task {
	out := make([]messages.Task, len(ids))
	for i, id := range ids {
		out[i] = messages.Task{ID: id, Type: "t", Attempt: 1}
	}
	return out
}

func TestLeaseBeforeRegisterIsRefused(t *testing.T) {
	m := New("a1")
	w := &Waiter{}
	fx := m.Lease(w, messages.LoadReport{}, nil)
	if len(fx.Answers) != 1 || fx.Answers[0].Err == nil || fx.Answers[0].Err.Code != messages.CodeUnknownExecutor {
		t.Fatalf("answers = %+v, want one unknown_executor", fx.Answers)
	}
	if len(fx.Send) != 0 {
		t.Fatalf("an unregistered agent sent %v to the dispatcher", fx.Send)
	}
}

func TestLeasePullsOnceAndWaitsForGrant(t *testing.T) {
	m := registered(t)
	w1, w2 := &Waiter{Max: 1}, &Waiter{Max: 5}
	fx := m.Lease(w1, messages.LoadReport{}, nil)
	if len(fx.Send) != 1 || len(fx.Answers) != 0 {
		t.Fatalf("first lease: send %v answers %v, want one Pull and no answer", fx.Send, fx.Answers)
	}
	if _, ok := fx.Send[0].(*messages.Pull); !ok {
		t.Fatalf("first lease sent %T, want *Pull", fx.Send[0])
	}
	fx = m.Lease(w2, messages.LoadReport{}, nil)
	if _, ok := fx.Send[0].(*messages.Heartbeat); !ok || len(fx.Send) != 1 {
		t.Fatalf("second lease while a pull is out sent %v, want one Heartbeat", fx.Send)
	}
	fx = m.Granted(&messages.Grant{Tasks: tasks(1, 2, 3)})
	if len(fx.Answers) != 2 {
		t.Fatalf("answers = %d, want 2", len(fx.Answers))
	}
	if a := fx.Answers[0]; a.Waiter != w1 || len(a.Tasks) != 1 || a.Tasks[0].ID != 1 {
		t.Fatalf("first answer = %+v, want task 1 for w1 (Max 1)", a)
	}
	if a := fx.Answers[1]; a.Waiter != w2 || len(a.Tasks) != 2 {
		t.Fatalf("second answer = %+v, want tasks 2,3 for w2", a)
	}
	if m.Delivered() != 3 || m.Buffered() != 0 || m.Waiting() != 0 {
		t.Fatalf("delivered %d buffered %d waiting %d, want 3 0 0", m.Delivered(), m.Buffered(), m.Waiting())
	}
	if len(fx.Send) != 0 {
		t.Fatalf("no waiter left, yet sent %v", fx.Send)
	}
}

func TestGrantWithoutWaiterIsBufferedAndWithdrawnCallIsNotAnswered(t *testing.T) {
	m := registered(t)
	w := &Waiter{Max: 1}
	m.Lease(w, messages.LoadReport{}, nil)
	if !m.Withdraw(w) {
		t.Fatal("withdraw of a waiting call reported it answered")
	}
	fx := m.Granted(&messages.Grant{Tasks: tasks(7, 8)})
	if len(fx.Answers) != 0 || m.Buffered() != 2 {
		t.Fatalf("answers %v buffered %d, want none and 2", fx.Answers, m.Buffered())
	}
	w2 := &Waiter{Max: 10}
	fx = m.Lease(w2, messages.LoadReport{}, nil)
	if len(fx.Answers) != 1 || len(fx.Answers[0].Tasks) != 2 {
		t.Fatalf("lease with a buffer: %+v, want both buffered tasks at once", fx.Answers)
	}
	if _, ok := fx.Send[0].(*messages.Heartbeat); !ok {
		t.Fatalf("served from the buffer, sent %T, want a Heartbeat (no new pull)", fx.Send[0])
	}
	if m.Withdraw(w2) {
		t.Fatal("withdraw of an answered call reported it waiting")
	}
	// The response never reached the agent: the tasks go back.
	fx = m.Return(fx.Answers[0].Tasks)
	if m.Buffered() != 2 || m.Delivered() != 0 || len(fx.Answers) != 0 {
		t.Fatalf("after return: buffered %d delivered %d, want 2 0", m.Buffered(), m.Delivered())
	}
}

func TestCancelOfBufferedTaskIsSilentAndOfDeliveredIsReported(t *testing.T) {
	m := registered(t)
	w := &Waiter{Max: 1}
	m.Lease(w, messages.LoadReport{}, nil)
	m.Granted(&messages.Grant{Tasks: tasks(1, 2)}) // 1 delivered, 2 buffered
	fx := m.Granted(&messages.Grant{Cancel: []uint64{1, 2}})
	if m.Buffered() != 0 || m.Delivered() != 0 || len(fx.Answers) != 0 {
		t.Fatalf("buffered %d delivered %d answers %v", m.Buffered(), m.Delivered(), fx.Answers)
	}
	cancel, _ := m.Heartbeat(messages.LoadReport{}, nil, nil)
	if len(cancel) != 1 || cancel[0] != 1 {
		t.Fatalf("heartbeat cancel = %v, want [1] (2 was never handed over)", cancel)
	}
	if cancel, _ = m.Heartbeat(messages.LoadReport{}, nil, nil); len(cancel) != 0 {
		t.Fatalf("cancel repeated: %v", cancel)
	}
}

func TestRefusedGrantAnswersWaitersAndForgetsRegistration(t *testing.T) {
	m := registered(t)
	w := &Waiter{}
	m.Lease(w, messages.LoadReport{}, nil)
	fx := m.Granted(&messages.Grant{Err: messages.Errorf(messages.CodeUnknownExecutor, "gone")})
	if len(fx.Answers) != 1 || fx.Answers[0].Err == nil {
		t.Fatalf("answers %+v, want the refusal", fx.Answers)
	}
	if m.Registered() {
		t.Fatal("still registered after the dispatcher forgot the agent")
	}
}

func TestHeartbeatFailsTasksTheAgentDoesNotHold(t *testing.T) {
	m := registered(t)
	m.Lease(&Waiter{Max: 2}, messages.LoadReport{}, nil)
	m.Granted(&messages.Grant{Tasks: tasks(1, 2)})
	// First heartbeat after the handover: the agent may not have the
	// response yet, so nothing is failed.
	_, fx := m.Heartbeat(messages.LoadReport{}, []uint64{}, nil)
	if hb := fx.Send[0].(*messages.Heartbeat); len(hb.Results) != 0 {
		t.Fatalf("first heartbeat failed %v", hb.Results)
	}
	_, fx = m.Heartbeat(messages.LoadReport{}, []uint64{2}, nil)
	hb := fx.Send[0].(*messages.Heartbeat)
	if len(hb.Results) != 1 || hb.Results[0].TaskID != 1 || hb.Results[0].OK || hb.Results[0].Attempt != 1 {
		t.Fatalf("second heartbeat results %+v, want task 1 failed", hb.Results)
	}
	// Held not reported (nil): nothing is judged.
	_, fx = m.Heartbeat(messages.LoadReport{}, nil, nil)
	_, fx = m.Heartbeat(messages.LoadReport{}, nil, nil)
	if hb := fx.Send[0].(*messages.Heartbeat); len(hb.Results) != 0 {
		t.Fatalf("heartbeat without held failed %v", hb.Results)
	}
}

// TestSleepingRelayStopsPulling: put to sleep, the relay does not pull again
// (it would spin against the dispatcher's sleep answers); lease calls only
// renew by Heartbeat until a grant without Sleep wakes it.
func TestSleepingRelayStopsPulling(t *testing.T) {
	m := registered(t)
	w := &Waiter{Max: 1}
	m.Lease(w, messages.LoadReport{}, nil)
	fx := m.Granted(&messages.Grant{Sleep: true, HeartbeatMillis: 7500})
	if len(fx.Send) != 0 || len(fx.Answers) != 0 {
		t.Fatalf("sleep grant: send %v answers %v, want nothing (the waiter waits)", fx.Send, fx.Answers)
	}
	fx = m.Lease(&Waiter{Max: 1}, messages.LoadReport{}, nil)
	if len(fx.Send) != 1 {
		t.Fatalf("lease while asleep sent %v", fx.Send)
	}
	if _, ok := fx.Send[0].(*messages.Heartbeat); !ok {
		t.Fatalf("lease while asleep sent %T, want *Heartbeat", fx.Send[0])
	}
	fx = m.Granted(&messages.Grant{Tasks: tasks(9)})
	if len(fx.Answers) != 1 || fx.Answers[0].Waiter != w || fx.Answers[0].Tasks[0].ID != 9 {
		t.Fatalf("waking grant answers %+v, want task 9 for the first waiter", fx.Answers)
	}
	if len(fx.Send) != 1 {
		t.Fatalf("woken relay with a waiter left sent %v, want a Pull", fx.Send)
	}
	if _, ok := fx.Send[0].(*messages.Pull); !ok {
		t.Fatalf("woken relay sent %T, want *Pull", fx.Send[0])
	}
}
