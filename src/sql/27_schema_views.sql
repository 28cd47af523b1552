-- Schema area "views": the dashboards and reader views.  They come last
-- because they read the tables of every other area.  Views are created
-- with security_invoker, so RLS of the reader applies: a member sees the
-- rows of their organizations only (within their role: invoices and
-- invitations are for admins and owners, the invoice preview too).
--
-- Each view is a public contract (README, "Dashboards"): columns are only
-- ever added, never renamed or removed.

CREATE FUNCTION ipai._schema_views(from_version integer) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF from_version < 1 THEN
		-- one row per Stripe invoice (owners and admins see their organizations')
		CREATE VIEW ipai.invoice_history WITH (security_invoker = true) AS
		SELECT i.org_id,
			   o.name AS org_name,
			   i.stripe_invoice_id,
			   i.stripe_subscription_id,
			   i.status,
			   i.currency,
			   i.amount_due,
			   i.amount_paid,
			   i.amount_remaining,
			   ipai._stripe_amount(i.amount_due, i.currency) AS amount_due_decimal,
			   ipai._stripe_amount(i.amount_paid, i.currency) AS amount_paid_decimal,
			   i.period_start,
			   i.period_end,
			   i.paid_at,
			   i.attempt_count,
			   i.hosted_invoice_url,
			   i.invoice_pdf,
			   i.created_at,
			   i.updated_at
		  FROM ipai.invoices i
		  JOIN ipai.organizations o ON o.id = i.org_id;
		COMMENT ON VIEW ipai.invoice_history IS
			'One row per Stripe invoice; amounts in the smallest currency unit and in currency units (_decimal)';

		GRANT SELECT ON ipai.invoice_history TO authenticated, service_role;
	END IF;
	IF from_version < 4 THEN
		-- (re)made in version 4: their per-organization functions are ones
		-- Citus can run on the workers (ipai._dashboard_period and
		-- ipai._dashboard_seats), and no correlated subquery sits in a
		-- FROM without a table.  A view of yours on one of them stops the
		-- upgrade here: drop it first, then make it again.
		IF pg_catalog.to_regclass('ipai.billing_dashboard') IS NOT NULL THEN
			DROP VIEW ipai.billing_dashboard;
		END IF;
		IF pg_catalog.to_regclass('ipai.org_dashboard') IS NOT NULL THEN
			DROP VIEW ipai.org_dashboard;
		END IF;
		IF pg_catalog.to_regclass('ipai.cms_approval_queue') IS NOT NULL THEN
			DROP VIEW ipai.cms_approval_queue;
		END IF;
		-- one row per organization: plan, subscription, usage period, usage
		-- of every feature against its limit, and the next invoice
		CREATE VIEW ipai.billing_dashboard WITH (security_invoker = true) AS
		SELECT o.id AS org_id,
			   o.name AS org_name,
			   o.plan_id,
			   p.name AS plan_name,
			   p.base_amount AS plan_amount,
			   p.currency AS plan_currency,
			   p.billing_interval AS plan_interval,
			   s.status AS subscription_status,
			   s.stripe_subscription_id,
			   bc.stripe_customer_id,
			   s.cancel_at_period_end,
			   per.period_start,
			   per.period_end,
			   u.ai_runs_used, u.ai_runs_max, u.ai_runs_percent,
			   u.cms_items_used, u.cms_items_max, u.cms_items_percent,
			   u.seats_used, u.seats_max, u.seats_percent,
			   u.usage,
			   inv.currency AS next_invoice_currency,
			   inv.base_amount AS next_invoice_base_amount,
			   inv.metered_quantity AS next_invoice_metered_quantity,
			   inv.metered_amount AS next_invoice_metered_amount,
			   inv.total AS next_invoice_total
		  FROM ipai.organizations o
		  JOIN ipai.plans p ON p.id = o.plan_id
		  LEFT JOIN ipai.billing_customers bc ON bc.org_id = o.id
		  LEFT JOIN LATERAL (
				SELECT s1.status, s1.stripe_subscription_id, s1.cancel_at_period_end
				  FROM ipai.subscriptions s1
				 WHERE s1.org_id = o.id
				 ORDER BY s1.status IN ('active', 'trialing', 'past_due') DESC,
						  s1.current_period_end DESC NULLS LAST, s1.updated_at DESC
				 LIMIT 1) s ON true
		  CROSS JOIN LATERAL ipai._dashboard_period(o.id) per
		  CROSS JOIN LATERAL (
				SELECT max(d.used) FILTER (WHERE d.feature = 'ai_runs') AS ai_runs_used,
					   max(d.max_quantity) FILTER (WHERE d.feature = 'ai_runs') AS ai_runs_max,
					   max(d.percent_used) FILTER (WHERE d.feature = 'ai_runs') AS ai_runs_percent,
					   max(d.used) FILTER (WHERE d.feature = 'cms_items') AS cms_items_used,
					   max(d.max_quantity) FILTER (WHERE d.feature = 'cms_items') AS cms_items_max,
					   max(d.percent_used) FILTER (WHERE d.feature = 'cms_items') AS cms_items_percent,
					   max(d.used) FILTER (WHERE d.feature = 'seats') AS seats_used,
					   max(d.max_quantity) FILTER (WHERE d.feature = 'seats') AS seats_max,
					   max(d.percent_used) FILTER (WHERE d.feature = 'seats') AS seats_percent,
					   coalesce(jsonb_agg(jsonb_build_object(
							'feature', d.feature, 'used', d.used, 'max', d.max_quantity,
							'remaining', d.remaining, 'percent', d.percent_used,
							'enforcement', d.enforcement, 'metered', d.metered)
							ORDER BY d.feature), '[]'::jsonb) AS usage
				  FROM ipai._dashboard_usage(o.id) d) u
		  LEFT JOIN LATERAL ipai._dashboard_preview(o.id) inv ON true;
		COMMENT ON VIEW ipai.billing_dashboard IS
			'One row per organization: plan, subscription, usage period, usage against limits, next invoice (owners/admins)';

		-- one row per organization: members with roles, open invitations
		-- (owners and admins see them), seats used of the plan's maximum
		CREATE VIEW ipai.org_dashboard WITH (security_invoker = true) AS
		SELECT o.id AS org_id,
			   o.name AS org_name,
			   o.plan_id,
			   o.billing_email,
			   o.timezone,
			   ipai.org_role_of(o.id) AS my_role,
			   m.member_count,
			   m.members,
			   i.pending_invitation_count,
			   i.pending_invitations,
			   seats.used AS seats_used,
			   seats.max_quantity AS seats_max,
			   seats.remaining AS seats_remaining,
			   o.created_at
		  FROM ipai.organizations o
		  CROSS JOIN LATERAL (
				SELECT count(*) AS member_count,
					   coalesce(jsonb_agg(jsonb_build_object(
							'user_id', mm.user_id, 'role', mm.role, 'email', em.email,
							'joined_at', mm.created_at)
							ORDER BY mm.role DESC, mm.created_at, mm.user_id), '[]'::jsonb) AS members
				  FROM ipai.org_members mm
				  LEFT JOIN LATERAL (
						SELECT ai.email FROM ipai.org_invitations ai
						 WHERE ai.org_id = mm.org_id AND ai.accepted_by = mm.user_id
						 ORDER BY ai.accepted_at DESC LIMIT 1) em ON true
				 WHERE mm.org_id = o.id) m
		  CROSS JOIN LATERAL (
				SELECT count(*) AS pending_invitation_count,
					   coalesce(jsonb_agg(jsonb_build_object(
							'id', pi.id, 'email', pi.email, 'role', pi.role,
							'invited_by', pi.invited_by, 'invited_at', pi.last_sent_at,
							'expires_at', pi.expires_at)
							ORDER BY pi.created_at, pi.email), '[]'::jsonb) AS pending_invitations
				  FROM ipai.org_invitations pi
				 WHERE pi.org_id = o.id AND pi.accepted_at IS NULL AND pi.revoked_at IS NULL
				   AND pi.expires_at > now()) i
		  LEFT JOIN LATERAL ipai._dashboard_seats(o.id) seats ON true;
		COMMENT ON VIEW ipai.org_dashboard IS
			'One row per organization: members with roles, pending invitations (owners/admins), seats used of max';

		-- one row per pending approval request, with what a reviewer needs
		-- to call ipai.cms_diff_html(page_id, diff_from_version, diff_to_version)
		CREATE VIEW ipai.cms_approval_queue WITH (security_invoker = true) AS
		SELECT a.org_id,
			   o.name AS org_name,
			   a.id AS approval_id,
			   a.page_id,
			   pg.slug AS page_slug,
			   pg.title AS page_title,
			   pg.status AS page_status,
			   a.requested_by,
			   a.requested_at,
			   now() - a.requested_at AS age,
			   a.request_comment,
			   dv.from_version AS diff_from_version,
			   dv.to_version AS diff_to_version,
			   (a.requested_by IS DISTINCT FROM ipai.current_user_id()
				AND (ipai.caller_is_privileged() OR ipai.is_org_member(a.org_id, 'admin'))) AS can_review
		  FROM ipai.cms_approvals a
		  JOIN ipai.cms_pages pg ON pg.org_id = a.org_id AND pg.id = a.page_id
		  JOIN ipai.organizations o ON o.id = a.org_id
		  LEFT JOIN LATERAL (
				SELECT t.to_version,
					   coalesce((SELECT max(v.version) FROM ipai.cms_page_versions v
								  WHERE v.org_id = a.org_id AND v.page_id = a.page_id
									AND v.status = 'published' AND v.version < t.to_version),
								(SELECT min(v.version) FROM ipai.cms_page_versions v
								  WHERE v.org_id = a.org_id AND v.page_id = a.page_id)) AS from_version
				  FROM (SELECT coalesce(a.page_version, max(v.version)) AS to_version
						  FROM ipai.cms_page_versions v
						 WHERE v.org_id = a.org_id AND v.page_id = a.page_id) t
				 WHERE t.to_version IS NOT NULL) dv ON true
		 WHERE a.status = 'pending';
		COMMENT ON VIEW ipai.cms_approval_queue IS
			'Pending CMS approval requests with page, requester, age and the inputs of ipai.cms_diff_html()';

		GRANT SELECT ON ipai.billing_dashboard, ipai.org_dashboard, ipai.cms_approval_queue
			TO authenticated, service_role;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai._schema_views(integer) FROM PUBLIC;
