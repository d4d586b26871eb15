"""Which state value each HAOSCAR-MIB object shows: the one map between MIB names and state.

`MibView.unbound()` must be empty after `bind_all`: a test fails if the MIB gains an
object that nothing serves, so the agent cannot drift from the MIB text.
"""

from __future__ import annotations

from typing import Callable

from haoscar_snmp.config.mibmap import ConfigMap
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.state import State

from .view import MibView


def bind_all(view: MibView, state: State, config: Callable[[], Config], config_map: ConfigMap,
             uptime_ticks: Callable[[float], int], snmp_auth_failures: Callable[[], int]) -> None:
    """Bind every readable object.

    The writable configuration scalars are read through `config_map` (the configuration
    domain's map of which object is which setting). `uptime_ticks` turns a monotonic time
    into sysUpTime ticks; `snmp_auth_failures` reads the engine's own counters (bad
    community, unknown user, wrong digest, bad decryption), which pysnmp keeps and we must
    not count twice.
    """
    s = state
    scalars: dict[str, Callable[[], object]] = {
        # cluster summary
        "haoscarClusterName": lambda: s.cluster.name,
        "haoscarClusterState": lambda: s.cluster.status,
        "haoscarActiveHead": lambda: s.cluster.active_head,
        "haoscarFailoverCount": lambda: s.cluster.failover_count,
        "haoscarLastFailoverTime": lambda: s.cluster.last_failover_time,
        "haoscarLastFailoverDuration": lambda: s.cluster.last_failover_duration_ms,
        "haoscarLastFailoverReason": lambda: s.cluster.last_failover_reason,
        "haoscarLocalHead": lambda: s.cluster.local_head,
        "haoscarAgentVersion": lambda: s.cluster.agent_version,
        "haoscarAgentStartTime": lambda: s.cluster.agent_start_time,
        # configuration
        "haoscarConfigLastChanged": lambda: s.config_meta.last_changed,
        "haoscarConfigChanges": lambda: s.config_meta.changes,
        # control
        "haoscarControlAction": lambda: 1,  # reads back none(1)
        "haoscarControlResult": lambda: s.control.result,
        "haoscarControlResultText": lambda: s.control.result_text,
        "haoscarControlLastAction": lambda: s.control.last_action,
        "haoscarControlLastTime": lambda: s.control.last_time,
        "haoscarControlServiceIndex": lambda: s.control.service_index,
        # events and alarms
        "haoscarEventLastIndex": lambda: s.event_last_index,
        "haoscarAlarmActiveCount": lambda: len(s.alarms),
        "haoscarAlarmLastChanged": lambda: uptime_ticks(s.alarm_last_changed) if s.alarm_last_changed else 0,
        # performance
        "haoscarPerfFailoverLast": lambda: s.perf.failover_last_ms,
        "haoscarPerfFailoverMin": lambda: s.perf.failover_min_ms,
        "haoscarPerfFailoverMax": lambda: s.perf.failover_max_ms,
        "haoscarPerfFailoverMean": lambda: s.perf.failover_mean_ms,
        "haoscarPerfHbRtt": lambda: s.hb_figures.rtt_us,
        "haoscarPerfHbJitter": lambda: s.hb_figures.jitter_us,
        "haoscarPerfMttr": lambda: s.acct_headline.mttr_s,
        "haoscarPerfMtbf": lambda: s.acct_headline.mtbf_s,
        "haoscarPerfAvailability": lambda: s.acct_headline.availability_ppm,
        # accounting
        "haoscarAcctRetention": lambda: config().accounting.retention_seconds,
        "haoscarPerfLoopLag": lambda: s.loop.lag_us,
        "haoscarPerfLoopLagMax": lambda: s.loop.lag_max_us,
        "haoscarPerfHbSendLag": lambda: s.perf_hb_send.lag_us,
        "haoscarPerfHbSendLagMax": lambda: s.perf_hb_send.lag_max_us,
        # security
        "haoscarSnmpAuthFailures": snmp_auth_failures,
        "haoscarSnmpSetAccepted": lambda: s.security.snmp_set_accepted,
        "haoscarSnmpSetRejected": lambda: s.security.snmp_set_rejected,
        "haoscarHbAuthFailures": lambda: s.security.hb_auth_failures,
        "haoscarHbReplays": lambda: s.security.hb_replays,
        "haoscarMalformedPackets": lambda: s.security.malformed_packets,
        # e-mail
        "haoscarEmailSent": lambda: s.email.sent,
        "haoscarEmailFailed": lambda: s.email.failed,
        "haoscarEmailDropped": lambda: s.email.dropped,
        "haoscarEmailQueued": lambda: s.email.queued,
        "haoscarEmailLastError": lambda: s.email.last_error,
        "haoscarEmailLastSent": lambda: s.email.last_sent,
        # the AgentX subagent
        "haoscarAgentxStatus": lambda: s.agentx.status,
        "haoscarAgentxMaster": lambda: s.agentx.master,
        "haoscarAgentxSessionId": lambda: s.agentx.session_id,
        "haoscarAgentxReconnects": lambda: s.agentx.reconnects,
        "haoscarAgentxPdusIn": lambda: s.agentx.pdus_in,
        "haoscarAgentxPdusOut": lambda: s.agentx.pdus_out,
        "haoscarAgentxParseErrors": lambda: s.agentx.parse_errors,
        "haoscarAgentxNotifySent": lambda: s.agentx.notifications_sent,
        "haoscarAgentxNotifyDropped": lambda: s.agentx.notifications_dropped,
        # the cluster-wide configuration kept equal on both heads
        "haoscarConfigSyncStatus": lambda: s.config_sync.status,
        "haoscarConfigSyncVersion": lambda: s.config_sync.version,
        "haoscarConfigSyncVersionHead": lambda: s.config_sync.version_head,
        "haoscarConfigSyncDigest": lambda: s.config_sync.digest,
        "haoscarConfigSyncPeerVersion": lambda: s.config_sync.peer_version,
        "haoscarConfigSyncPeerVersionHead": lambda: s.config_sync.peer_version_head,
        "haoscarConfigSyncPeerFingerprint": lambda: s.config_sync.peer_fingerprint,
        "haoscarConfigSyncDiffering": lambda: s.config_sync.differing,
        "haoscarConfigSyncPushes": lambda: s.config_sync.pushes,
        "haoscarConfigSyncAdoptions": lambda: s.config_sync.adoptions,
        "haoscarConfigSyncRefusals": lambda: s.config_sync.refusals,
        "haoscarConfigSyncUnconfirmed": lambda: s.config_sync.unconfirmed,
        "haoscarConfigSyncBadMessages": lambda: s.config_sync.bad_messages,
        # the private LANs as a whole
        "haoscarLanPoller": lambda: s.cluster.lan_poller,
        "haoscarLanPollerPolicy": lambda: s.cluster.lan_poller_policy,
        "haoscarLanState": lambda: s.cluster.lan_state,
        # the public targets' settings, and this head's heartbeat process
        "haoscarPubProbeInterval": lambda: config().failover.public_probe_interval_ms,
        "haoscarPubRise": lambda: config().failover.public_rise,
        "haoscarPubFall": lambda: config().failover.public_fall,
        "haoscarPubHoldDown": lambda: config().failover.public_hold_down_ms,
        "haoscarHbProcessStatus": lambda: 1 if s.peer is None else 3 if s.hb_process.silent else 2,
        "haoscarHbProcessRestarts": lambda: s.hb_process.restarts,
        # the cluster past two heads (Corosync and Pacemaker)
        "haoscarMembershipKnown": lambda: s.membership.known,
        "haoscarPlacementKnown": lambda: s.membership.placement_known,
        "haoscarQuorate": lambda: s.membership.quorate,
        "haoscarQuorumExpectedVotes": lambda: s.membership.expected_votes,
        "haoscarQuorumTotalVotes": lambda: s.membership.total_votes,
        "haoscarQuorumRingId": lambda: s.membership.ring_id,
        "haoscarQuorumToken": lambda: s.membership.token_ms,
        "haoscarMembershipLocalNodeId": lambda: s.membership.local_node_id,
        "haoscarPacemakerDc": lambda: s.membership.dc,
        "haoscarMembershipChanges": lambda: s.membership.changes,
        "haoscarMembershipLastChanged":
            lambda: uptime_ticks(s.membership.last_changed) if s.membership.last_changed else 0,
    }
    for name, scalar in config_map.scalars.items():
        scalars[name] = (lambda m: lambda: m.read(config()))(scalar)
    for name, getter in scalars.items():
        view.bind_scalar(name, getter)

    view.bind_table("haoscarHeadEntry", lambda: s.heads, {
        "haoscarHeadName": lambda r: r.name,
        "haoscarHeadPreferredRole": lambda r: r.preferred_role,
        "haoscarHeadState": lambda r: r.status,
        "haoscarHeadLanAAddress": lambda r: r.lan_a,
        "haoscarHeadLanBAddress": lambda r: r.lan_b,
        "haoscarHeadPublicAddress": lambda r: r.public,
        "haoscarHeadLastHeartbeat": lambda r: r.last_heartbeat,
        "haoscarHeadIsLocal": lambda r: r.is_local,
        "haoscarHeadRoleChanges": lambda r: r.role_changes,
        "haoscarHeadPublicReached": lambda r: r.public_reached,
        "haoscarHeadPublicState": lambda r: r.public_state,
    })
    view.bind_table("haoscarPubTargetEntry", lambda: s.public_targets, {
        "haoscarPubTargetAddress": lambda r: r.address,
        "haoscarPubTargetStatus": lambda r: r.status,
        "haoscarPubTargetRtt": lambda r: r.rtt_us,
        "haoscarPubTargetLastChange": lambda r: r.last_change,
    })
    view.bind_table("haoscarHbPathEntry", lambda: s.hb_paths, {
        "haoscarHbPathStatus": lambda r: r.status,
        "haoscarHbPathSent": lambda r: r.sent,
        "haoscarHbPathReceived": lambda r: r.received,
        "haoscarHbPathLost": lambda r: r.lost,
        "haoscarHbPathRtt": lambda r: r.rtt_us,
        "haoscarHbPathLastHeard": lambda r: r.last_heard,
        "haoscarHbPathRejected": lambda r: r.rejected,
        "haoscarHbPathMaxGap": lambda r: r.max_gap_us,
    })
    view.bind_table("haoscarLanIfEntry", lambda: s.lan_ifs, {
        "haoscarLanIfNode": lambda r: r.node,
        "haoscarLanIfLan": lambda r: r.lan,
        "haoscarLanIfName": lambda r: r.name,
        "haoscarLanIfAddress": lambda r: r.address,
        "haoscarLanIfStatus": lambda r: r.status,
        "haoscarLanIfInPackets": lambda r: r.in_packets,
        "haoscarLanIfOutPackets": lambda r: r.out_packets,
        "haoscarLanIfLastChange": lambda r: r.last_change,
        "haoscarLanIfProbesSent": lambda r: r.probes_sent,
        "haoscarLanIfReplies": lambda r: r.replies,
        "haoscarLanIfRoundTrip": lambda r: r.rtt_us,
        "haoscarLanIfLastReply": lambda r: r.last_reply,
        "haoscarLanIfProbeErrors": lambda r: r.probe_errors,
        "haoscarLanIfLastError": lambda r: r.last_error,
        "haoscarLanIfCarrier": lambda r: r.carrier,
        "haoscarLanIfInErrors": lambda r: r.in_errors,
        "haoscarLanIfOutErrors": lambda r: r.out_errors,
        "haoscarLanIfInDiscards": lambda r: r.in_discards,
        "haoscarLanIfOutDiscards": lambda r: r.out_discards,
        "haoscarLanIfSource": lambda r: r.source,
    })
    view.bind_table("haoscarLanEntry", lambda: s.lans, {
        "haoscarLanStatus": lambda r: r.status,
        "haoscarLanInterfaces": lambda r: r.interfaces,
        "haoscarLanUp": lambda r: r.up,
        "haoscarLanDown": lambda r: r.down,
        "haoscarLanUnknown": lambda r: r.unknown,
        "haoscarLanLastChange": lambda r: r.last_change,
    })
    view.bind_table("haoscarAliasEntry", lambda: s.aliases, {
        "haoscarAliasAddress": lambda r: r.address,
        "haoscarAliasPrefixLength": lambda r: r.prefix_length,
        "haoscarAliasInterface": lambda r: r.interface,
        "haoscarAliasOwner": lambda r: r.owner,
        "haoscarAliasStatus": lambda r: r.status,
        "haoscarAliasGarpSent": lambda r: r.garp_sent,
        "haoscarAliasRowStatus": lambda r: r.row_status,
    })
    view.bind_table("haoscarServiceEntry", lambda: s.services, {
        "haoscarServiceName": lambda r: r.name,
        "haoscarServiceCheck": lambda r: r.check,
        "haoscarServiceState": lambda r: r.status,
        "haoscarServiceRestarts": lambda r: r.restarts,
        "haoscarServiceConsecFailures": lambda r: r.consec_failures,
        "haoscarServiceRetryThreshold": lambda r: r.retry_threshold,
        "haoscarServiceRecovery": lambda r: r.recovery,
        "haoscarServiceAdminStatus": lambda r: 1 if r.enabled else 2,
        "haoscarServiceLastFailure": lambda r: r.last_failure,
        "haoscarServiceRestartCommand": lambda r: r.restart,
        "haoscarServiceActiveOnly": lambda r: r.active_only,
        "haoscarServiceLastAction": lambda r: r.last_action,
        "haoscarServiceRowStatus": lambda r: r.row_status,
        "haoscarServiceCheckType": lambda r: r.check_type,
        "haoscarServiceInterval": lambda r: r.interval_ms,
        "haoscarServiceTimeout": lambda r: r.timeout_ms,
        "haoscarServiceRise": lambda r: r.rise,
        "haoscarServiceCheckSend": lambda r: r.send,
        "haoscarServiceCheckExpect": lambda r: r.expect,
        "haoscarServiceMaxRestarts": lambda r: r.max_restarts,
        "haoscarServiceRestartWindow": lambda r: r.restart_window_s,
        "haoscarServiceResetAfter": lambda r: r.reset_after,
        "haoscarServiceFlapThreshold": lambda r: r.flap_threshold,
        "haoscarServiceFailureTimeout": lambda r: r.failure_timeout_s,
        "haoscarServiceRestartTimeout": lambda r: r.restart_timeout_ms,
        "haoscarServiceRung": lambda r: r.rung,
        "haoscarServiceRestartsInWindow": lambda r: r.restarts_in_window,
        "haoscarServiceLastReason": lambda r: r.last_reason,
        "haoscarServiceLastActionTime": lambda r: r.last_action_time,
        "haoscarServiceCheckErrors": lambda r: r.check_errors,
        "haoscarServiceCheckTimeouts": lambda r: r.check_timeouts,
    })
    view.bind_table("haoscarEventEntry", lambda: s.events, {
        "haoscarEventTime": lambda r: r.time,
        "haoscarEventType": lambda r: r.type,
        "haoscarEventSubject": lambda r: r.subject,
        "haoscarEventSeverity": lambda r: r.severity,
        "haoscarEventText": lambda r: r.text,
    })
    view.bind_table("haoscarAlarmEntry", lambda: s.alarms, {
        "haoscarAlarmSeverity": lambda r: r.severity,
        "haoscarAlarmType": lambda r: r.alarm_type,
        "haoscarAlarmProbableCause": lambda r: r.probable_cause,
        "haoscarAlarmSubject": lambda r: r.subject,
        "haoscarAlarmRaisedTime": lambda r: r.raised_time,
        "haoscarAlarmText": lambda r: r.text,
        "haoscarAlarmLastUpdated": lambda r: r.last_updated or r.raised_time,
    })
    view.bind_table("haoscarAlarmTargetEntry", lambda: s.alarm_targets, {
        "haoscarAlarmTargetName": lambda r: r.name,
        "haoscarAlarmTargetKind": lambda r: 2 if r.inform else 1,
        "haoscarAlarmTargetStatus": lambda r: r.status,
        "haoscarAlarmTargetSent": lambda r: r.sent,
        "haoscarAlarmTargetLost": lambda r: r.lost,
        "haoscarAlarmTargetResyncs": lambda r: r.resyncs,
        "haoscarAlarmTargetLastResync": lambda r: uptime_ticks(r.last_resync) if r.last_resync else 0,
    })
    view.bind_table("haoscarClusterNodeEntry", lambda: s.cluster_nodes, {
        "haoscarClusterNodeName": lambda r: r.name,
        "haoscarClusterNodeVotes": lambda r: r.votes,
        "haoscarClusterNodeMember": lambda r: r.member,
        "haoscarClusterNodeOnline": lambda r: r.online,
        "haoscarClusterNodeStandby": lambda r: r.standby,
        "haoscarClusterNodeUnclean": lambda r: r.unclean,
        "haoscarClusterNodeMaintenance": lambda r: r.maintenance,
        "haoscarClusterNodeDc": lambda r: r.dc,
        "haoscarClusterNodeIsLocal": lambda r: r.is_local,
    })
    view.bind_table("haoscarClusterLinkEntry", lambda: s.cluster_links, {
        "haoscarClusterLinkConnected": lambda r: r.connected,
        "haoscarClusterLinkLatency": lambda r: r.latency_us,
    })
    view.bind_table("haoscarResourceEntry", lambda: s.resources, {
        "haoscarResourceId": lambda r: r.resource_id,
        "haoscarResourceAgent": lambda r: r.agent,
        "haoscarResourceRole": lambda r: r.role,
        "haoscarResourceNode": lambda r: r.node,
        "haoscarResourceIsFailed": lambda r: r.failed,
        "haoscarResourceFailCount": lambda r: r.fail_count,
        "haoscarResourceLastResult": lambda r: r.last_result,
        "haoscarResourceAddress": lambda r: r.address,
    })
    view.bind_table("haoscarAcctEntry", lambda: s.accounting, {
        "haoscarAcctSubjectType": lambda r: r.kind,
        "haoscarAcctSubject": lambda r: r.subject,
        "haoscarAcctOutages": lambda r: r.outages,
        "haoscarAcctDowntime": lambda r: r.downtime_s,
        "haoscarAcctMonitoredTime": lambda r: r.monitored_s,
        "haoscarAcctAvailability": lambda r: r.availability_ppm,
        "haoscarAcctLastOutageStart": lambda r: r.last_outage_start,
        "haoscarAcctLastOutageDuration": lambda r: r.last_outage_duration_s,
        "haoscarAcctMttr": lambda r: r.mttr_s,
        "haoscarAcctMtbf": lambda r: r.mtbf_s,
        "haoscarAcctLastOutageCause": lambda r: r.last_outage_cause,
        "haoscarAcctInOutage": lambda r: r.in_outage,
    })
    view.bind_table("haoscarAcctWindowEntry", lambda: s.acct_windows, {
        "haoscarAcctWindowName": lambda r: r.name,
        "haoscarAcctWindowLength": lambda r: r.length_s,
    })
    view.bind_table("haoscarJobEntry", lambda: s.jobs, {
        "haoscarJobName": lambda r: r.name,
        "haoscarJobRuns": lambda r: r.runs,
        "haoscarJobFailures": lambda r: r.failures,
        "haoscarJobLastDuration": lambda r: r.last_duration_us,
        "haoscarJobMaxDuration": lambda r: r.max_duration_us,
        "haoscarJobLastRun": lambda r: r.last_run,
        "haoscarJobLastResult": lambda r: r.last_result,
    })
    view.bind_table("haoscarPerfDurationEntry", lambda: s.perf_durations, {
        "haoscarPerfDurationCount": lambda r: r.count,
        "haoscarPerfDurationLast": lambda r: r.last_ms,
        "haoscarPerfDurationMin": lambda r: r.min_ms,
        "haoscarPerfDurationMax": lambda r: r.max_ms,
        "haoscarPerfDurationMean": lambda r: r.mean_ms,
    })
    view.bind_table("haoscarPerfBucketEntry", lambda: s.perf_buckets, {
        "haoscarPerfBucketLower": lambda r: r.lower_ms,
        "haoscarPerfBucketUpper": lambda r: r.upper_ms,
        "haoscarPerfBucketCount": lambda r: r.count,
    })
    view.bind_table("haoscarPerfHbPathEntry", lambda: s.perf_hb_paths, {
        "haoscarPerfHbPathRtt": lambda r: r.rtt_us,
        "haoscarPerfHbPathRttMin": lambda r: r.rtt_min_us,
        "haoscarPerfHbPathRttMax": lambda r: r.rtt_max_us,
        "haoscarPerfHbPathRttMean": lambda r: r.rtt_mean_us,
        "haoscarPerfHbPathJitter": lambda r: r.jitter_us,
        "haoscarPerfHbPathReplies": lambda r: r.replies,
    })
    view.bind_table("haoscarPerfJobEntry", lambda: s.perf_jobs, {
        "haoscarPerfJobCycles": lambda r: r.cycles,
        "haoscarPerfJobMeanDuration": lambda r: r.mean_us,
        "haoscarPerfJobOverruns": lambda r: r.overruns,
    })
    view.bind_table("haoscarPerfRequestEntry", lambda: s.perf_requests, {
        "haoscarPerfRequestServed": lambda r: r.served,
        "haoscarPerfRequestDropped": lambda r: r.dropped,
        "haoscarPerfRequestTimeMean": lambda r: r.mean_us,
        "haoscarPerfRequestTimeRecentMax": lambda r: r.recent_max_us,
        "haoscarPerfRequestTimeMax": lambda r: r.max_us,
    })

