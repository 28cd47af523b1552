// TypeScript declarations of schema "ipai" (ipai_saas 1.3, schema version 4),
// generated from the catalog by ipai.typescript_types().  Do not edit:
// psql -X -A -t -c 'SELECT ipai.typescript_types()' -o packages/saas-types/src/ipai.d.ts

export type Json =
  | string
  | number
  | boolean
  | null
  | { [key: string]: Json | undefined }
  | Json[];

export type Database = {
  ipai: {
    Tables: {
      /** Append-only journal of changes (UPDATE, DELETE and TRUNCATE are refused) */
      audit_log: {
        Row: {
          id: number;
          org_id: string | null;
          actor_id: string | null;
          actor_role: string;
          action: string;
          object_type: string | null;
          object_id: string | null;
          old_values: Json | null;
          new_values: Json | null;
          created_at: string;
        };
        Insert: {
          id?: never;
          org_id?: string | null;
          actor_id?: string | null;
          actor_role?: string;
          action: string;
          object_type?: string | null;
          object_id?: string | null;
          old_values?: Json | null;
          new_values?: Json | null;
          created_at?: string;
        };
        Update: {
          id?: never;
          org_id?: string | null;
          actor_id?: string | null;
          actor_role?: string;
          action?: string;
          object_type?: string | null;
          object_id?: string | null;
          old_values?: Json | null;
          new_values?: Json | null;
          created_at?: string;
        };
      };
      /** The Stripe customer of each organization, linked by checkout.session.completed */
      billing_customers: {
        Row: {
          org_id: string;
          stripe_customer_id: string;
          email: string | null;
          last_event_id: string | null;
          last_event_created: string | null;
          created_at: string;
          updated_at: string;
        };
        Insert: {
          org_id: string;
          stripe_customer_id: string;
          email?: string | null;
          last_event_id?: string | null;
          last_event_created?: string | null;
          created_at?: string;
          updated_at?: string;
        };
        Update: {
          org_id?: string;
          stripe_customer_id?: string;
          email?: string | null;
          last_event_id?: string | null;
          last_event_created?: string | null;
          created_at?: string;
          updated_at?: string;
        };
      };
      /** Approval requests of CMS pages and their decisions (pending, approved, rejected, voided) */
      cms_approvals: {
        Row: {
          org_id: string;
          id: string;
          page_id: string;
          page_version: number | null;
          status: string;
          requested_by: string | null;
          requested_at: string;
          request_comment: string | null;
          reviewer_id: string | null;
          decided_at: string | null;
          decision_comment: string | null;
          voided_by: string | null;
          voided_at: string | null;
        };
        Insert: {
          org_id: string;
          id?: string;
          page_id: string;
          page_version?: number | null;
          status?: string;
          requested_by?: string | null;
          requested_at?: string;
          request_comment?: string | null;
          reviewer_id?: string | null;
          decided_at?: string | null;
          decision_comment?: string | null;
          voided_by?: string | null;
          voided_at?: string | null;
        };
        Update: {
          org_id?: string;
          id?: string;
          page_id?: string;
          page_version?: number | null;
          status?: string;
          requested_by?: string | null;
          requested_at?: string;
          request_comment?: string | null;
          reviewer_id?: string | null;
          decided_at?: string | null;
          decision_comment?: string | null;
          voided_by?: string | null;
          voided_at?: string | null;
        };
      };
      /** Snapshot of a page at each status change, written by trigger; never updated */
      cms_page_versions: {
        Row: {
          org_id: string;
          page_id: string;
          version: number;
          status: Database["ipai"]["Enums"]["page_status"];
          title: string;
          body: string;
          metadata: Json;
          created_by: string | null;
          created_at: string;
        };
        Insert: {
          org_id: string;
          page_id: string;
          version: number;
          status: Database["ipai"]["Enums"]["page_status"];
          title: string;
          body: string;
          metadata: Json;
          created_by?: string | null;
          created_at?: string;
        };
        Update: {
          org_id?: string;
          page_id?: string;
          version?: number;
          status?: Database["ipai"]["Enums"]["page_status"];
          title?: string;
          body?: string;
          metadata?: Json;
          created_by?: string | null;
          created_at?: string;
        };
      };
      /** CMS pages; status follows draft -> pending -> approved -> published, enforced by triggers */
      cms_pages: {
        Row: {
          org_id: string;
          id: string;
          content_type_id: string | null;
          slug: string;
          title: string;
          body: string;
          metadata: Json;
          status: Database["ipai"]["Enums"]["page_status"];
          version: number;
          created_by: string | null;
          updated_by: string | null;
          approved_by: string | null;
          approved_at: string | null;
          published_by: string | null;
          published_at: string | null;
          created_at: string;
          updated_at: string;
        };
        Insert: {
          org_id: string;
          id?: string;
          content_type_id?: string | null;
          slug: string;
          title: string;
          body?: string;
          metadata?: Json;
          status?: Database["ipai"]["Enums"]["page_status"];
          version?: number;
          created_by?: string | null;
          updated_by?: string | null;
          approved_by?: string | null;
          approved_at?: string | null;
          published_by?: string | null;
          published_at?: string | null;
          created_at?: string;
          updated_at?: string;
        };
        Update: {
          org_id?: string;
          id?: string;
          content_type_id?: string | null;
          slug?: string;
          title?: string;
          body?: string;
          metadata?: Json;
          status?: Database["ipai"]["Enums"]["page_status"];
          version?: number;
          created_by?: string | null;
          updated_by?: string | null;
          approved_by?: string | null;
          approved_at?: string | null;
          published_by?: string | null;
          published_at?: string | null;
          created_at?: string;
          updated_at?: string;
        };
      };
      /** Scheduled publish/unpublish of pages: pending, running (claimed), done or failed */
      cms_schedule: {
        Row: {
          org_id: string;
          id: number;
          page_id: string;
          action: Database["ipai"]["Enums"]["schedule_action"];
          run_at: string;
          status: Database["ipai"]["Enums"]["schedule_status"];
          attempts: number;
          retry_at: string | null;
          claimed_by_pid: number | null;
          claimed_backend_start: string | null;
          claimed_at: string | null;
          executed_at: string | null;
          lateness: string | null;
          executed_via: string | null;
          error: string | null;
          created_by: string | null;
          created_at: string;
          updated_at: string;
        };
        Insert: {
          org_id: string;
          id?: never;
          page_id: string;
          action?: Database["ipai"]["Enums"]["schedule_action"];
          run_at: string;
          status?: Database["ipai"]["Enums"]["schedule_status"];
          attempts?: number;
          retry_at?: string | null;
          claimed_by_pid?: number | null;
          claimed_backend_start?: string | null;
          claimed_at?: string | null;
          executed_at?: string | null;
          lateness?: string | null;
          executed_via?: string | null;
          error?: string | null;
          created_by?: string | null;
          created_at?: string;
          updated_at?: string;
        };
        Update: {
          org_id?: string;
          id?: never;
          page_id?: string;
          action?: Database["ipai"]["Enums"]["schedule_action"];
          run_at?: string;
          status?: Database["ipai"]["Enums"]["schedule_status"];
          attempts?: number;
          retry_at?: string | null;
          claimed_by_pid?: number | null;
          claimed_backend_start?: string | null;
          claimed_at?: string | null;
          executed_at?: string | null;
          lateness?: string | null;
          executed_via?: string | null;
          error?: string | null;
          created_by?: string | null;
          created_at?: string;
          updated_at?: string;
        };
      };
      /** Kinds of CMS pages per organization, with an optional JSON schema for page metadata */
      content_types: {
        Row: {
          org_id: string;
          id: string;
          key: string;
          name: string;
          metadata_schema: Json | null;
          created_at: string;
        };
        Insert: {
          org_id: string;
          id?: string;
          key: string;
          name: string;
          metadata_schema?: Json | null;
          created_at?: string;
        };
        Update: {
          org_id?: string;
          id?: string;
          key?: string;
          name?: string;
          metadata_schema?: Json | null;
          created_at?: string;
        };
      };
      /** Stripe invoices as of the newest applied event; amounts in minor units (cents) */
      invoices: {
        Row: {
          org_id: string;
          stripe_invoice_id: string;
          stripe_subscription_id: string | null;
          stripe_customer_id: string | null;
          status: string;
          currency: string | null;
          amount_due: number | null;
          amount_paid: number | null;
          amount_remaining: number | null;
          period_start: string | null;
          period_end: string | null;
          hosted_invoice_url: string | null;
          invoice_pdf: string | null;
          paid_at: string | null;
          attempt_count: number | null;
          last_event_id: string | null;
          last_event_type: string | null;
          last_event_created: string | null;
          created_at: string;
          updated_at: string;
        };
        Insert: {
          org_id: string;
          stripe_invoice_id: string;
          stripe_subscription_id?: string | null;
          stripe_customer_id?: string | null;
          status: string;
          currency?: string | null;
          amount_due?: number | null;
          amount_paid?: number | null;
          amount_remaining?: number | null;
          period_start?: string | null;
          period_end?: string | null;
          hosted_invoice_url?: string | null;
          invoice_pdf?: string | null;
          paid_at?: string | null;
          attempt_count?: number | null;
          last_event_id?: string | null;
          last_event_type?: string | null;
          last_event_created?: string | null;
          created_at?: string;
          updated_at?: string;
        };
        Update: {
          org_id?: string;
          stripe_invoice_id?: string;
          stripe_subscription_id?: string | null;
          stripe_customer_id?: string | null;
          status?: string;
          currency?: string | null;
          amount_due?: number | null;
          amount_paid?: number | null;
          amount_remaining?: number | null;
          period_start?: string | null;
          period_end?: string | null;
          hosted_invoice_url?: string | null;
          invoice_pdf?: string | null;
          paid_at?: string | null;
          attempt_count?: number | null;
          last_event_id?: string | null;
          last_event_type?: string | null;
          last_event_created?: string | null;
          created_at?: string;
          updated_at?: string;
        };
      };
      /** Invitations to join an organization; the token is stored only as its SHA-256 (token_hash) */
      org_invitations: {
        Row: {
          org_id: string;
          id: string;
          email: string;
          role: Database["ipai"]["Enums"]["org_role"];
          token_hash: string;
          invited_by: string | null;
          created_at: string;
          expires_at: string;
          sent_count: number;
          last_sent_at: string;
          accepted_at: string | null;
          accepted_by: string | null;
          revoked_at: string | null;
          revoked_by: string | null;
          revoke_reason: string | null;
        };
        Insert: {
          org_id: string;
          id?: string;
          email: string;
          role?: Database["ipai"]["Enums"]["org_role"];
          token_hash: string;
          invited_by?: string | null;
          created_at?: string;
          expires_at?: string;
          sent_count?: number;
          last_sent_at?: string;
          accepted_at?: string | null;
          accepted_by?: string | null;
          revoked_at?: string | null;
          revoked_by?: string | null;
          revoke_reason?: string | null;
        };
        Update: {
          org_id?: string;
          id?: string;
          email?: string;
          role?: Database["ipai"]["Enums"]["org_role"];
          token_hash?: string;
          invited_by?: string | null;
          created_at?: string;
          expires_at?: string;
          sent_count?: number;
          last_sent_at?: string;
          accepted_at?: string | null;
          accepted_by?: string | null;
          revoked_at?: string | null;
          revoked_by?: string | null;
          revoke_reason?: string | null;
        };
      };
      /** Who belongs to which organization, with role owner/admin/editor/viewer */
      org_members: {
        Row: {
          org_id: string;
          user_id: string;
          role: Database["ipai"]["Enums"]["org_role"];
          created_at: string;
          updated_at: string;
        };
        Insert: {
          org_id: string;
          user_id: string;
          role?: Database["ipai"]["Enums"]["org_role"];
          created_at?: string;
          updated_at?: string;
        };
        Update: {
          org_id?: string;
          user_id?: string;
          role?: Database["ipai"]["Enums"]["org_role"];
          created_at?: string;
          updated_at?: string;
        };
      };
      /** Tenants; a new organization is on the default plan (free) */
      organizations: {
        Row: {
          id: string;
          name: string;
          billing_email: string | null;
          timezone: string;
          plan_id: string;
          created_by: string | null;
          created_at: string;
          updated_at: string;
        };
        Insert: {
          id?: string;
          name: string;
          billing_email?: string | null;
          timezone?: string;
          plan_id?: string;
          created_by?: string | null;
          created_at?: string;
          updated_at?: string;
        };
        Update: {
          id?: string;
          name?: string;
          billing_email?: string | null;
          timezone?: string;
          plan_id?: string;
          created_by?: string | null;
          created_at?: string;
          updated_at?: string;
        };
      };
      /** Work for the Edge layer (auth.invite, stripe.meter_event); service_role only */
      outbox: {
        Row: {
          org_id: string;
          id: number;
          topic: string;
          payload: Json;
          dedupe_key: string | null;
          created_at: string;
          claimed_at: string | null;
          attempts: number;
          sent_at: string | null;
          next_attempt_at: string;
          first_attempt_at: string | null;
          last_error: string | null;
          dead_at: string | null;
          in_doubt: boolean;
          batch: string | null;
        };
        Insert: {
          org_id: string;
          id?: never;
          topic: string;
          payload: Json;
          dedupe_key?: string | null;
          created_at?: string;
          claimed_at?: string | null;
          attempts?: number;
          sent_at?: string | null;
          next_attempt_at?: string;
          first_attempt_at?: string | null;
          last_error?: string | null;
          dead_at?: string | null;
          in_doubt?: boolean;
          batch?: string | null;
        };
        Update: {
          org_id?: string;
          id?: never;
          topic?: string;
          payload?: Json;
          dedupe_key?: string | null;
          created_at?: string;
          claimed_at?: string | null;
          attempts?: number;
          sent_at?: string | null;
          next_attempt_at?: string;
          first_attempt_at?: string | null;
          last_error?: string | null;
          dead_at?: string | null;
          in_doubt?: boolean;
          batch?: string | null;
        };
      };
      /** What each plan allows per feature; max_quantity NULL means unlimited */
      plan_entitlements: {
        Row: {
          plan_id: string;
          feature: string;
          max_quantity: number | null;
          enforcement: string;
          counted_by: string;
          reset_period: string;
          metered: boolean;
          unit_price: number | null;
          stripe_meter_event_name: string | null;
        };
        Insert: {
          plan_id: string;
          feature: string;
          max_quantity?: number | null;
          enforcement?: string;
          counted_by?: string;
          reset_period?: string;
          metered?: boolean;
          unit_price?: number | null;
          stripe_meter_event_name?: string | null;
        };
        Update: {
          plan_id?: string;
          feature?: string;
          max_quantity?: number | null;
          enforcement?: string;
          counted_by?: string;
          reset_period?: string;
          metered?: boolean;
          unit_price?: number | null;
          stripe_meter_event_name?: string | null;
        };
      };
      /** Plans; stripe_price_id maps a Stripe price to a plan (set it with UPDATE) */
      plans: {
        Row: {
          id: string;
          name: string;
          stripe_price_id: string | null;
          currency: string;
          base_amount: number;
          billing_interval: string;
          is_default: boolean;
          created_at: string;
          updated_at: string;
        };
        Insert: {
          id: string;
          name: string;
          stripe_price_id?: string | null;
          currency?: string;
          base_amount?: number;
          billing_interval?: string;
          is_default?: boolean;
          created_at?: string;
          updated_at?: string;
        };
        Update: {
          id?: string;
          name?: string;
          stripe_price_id?: string | null;
          currency?: string;
          base_amount?: number;
          billing_interval?: string;
          is_default?: boolean;
          created_at?: string;
          updated_at?: string;
        };
      };
      /** Schema versions applied by ipai.install_schema(), newest last */
      schema_version: {
        Row: {
          version: number;
          extension_version: string;
          installed_at: string;
        };
        Insert: {
          version: number;
          extension_version: string;
          installed_at?: string;
        };
        Update: {
          version?: number;
          extension_version?: string;
          installed_at?: string;
        };
      };
      /** Stripe subscriptions as of the newest applied event; the organization's plan follows them */
      subscriptions: {
        Row: {
          org_id: string;
          stripe_subscription_id: string;
          stripe_customer_id: string | null;
          status: string;
          plan_id: string | null;
          stripe_price_id: string | null;
          quantity: number | null;
          current_period_start: string | null;
          current_period_end: string | null;
          cancel_at_period_end: boolean;
          canceled_at: string | null;
          ended_at: string | null;
          trial_end: string | null;
          last_event_id: string | null;
          last_event_type: string | null;
          last_event_created: string | null;
          created_at: string;
          updated_at: string;
        };
        Insert: {
          org_id: string;
          stripe_subscription_id: string;
          stripe_customer_id?: string | null;
          status: string;
          plan_id?: string | null;
          stripe_price_id?: string | null;
          quantity?: number | null;
          current_period_start?: string | null;
          current_period_end?: string | null;
          cancel_at_period_end?: boolean;
          canceled_at?: string | null;
          ended_at?: string | null;
          trial_end?: string | null;
          last_event_id?: string | null;
          last_event_type?: string | null;
          last_event_created?: string | null;
          created_at?: string;
          updated_at?: string;
        };
        Update: {
          org_id?: string;
          stripe_subscription_id?: string;
          stripe_customer_id?: string | null;
          status?: string;
          plan_id?: string | null;
          stripe_price_id?: string | null;
          quantity?: number | null;
          current_period_start?: string | null;
          current_period_end?: string | null;
          cancel_at_period_end?: boolean;
          canceled_at?: string | null;
          ended_at?: string | null;
          trial_end?: string | null;
          last_event_id?: string | null;
          last_event_type?: string | null;
          last_event_created?: string | null;
          created_at?: string;
          updated_at?: string;
        };
      };
      /** Live usage counters, maintained with the events; ipai.refresh_org_usage() repairs drift */
      usage_counters: {
        Row: {
          org_id: string;
          feature: string;
          period_start: string;
          period_end: string | null;
          used: number;
          held: number;
          hold_expires_at: string | null;
          updated_at: string;
          carried: number;
        };
        Insert: {
          org_id: string;
          feature: string;
          period_start: string;
          period_end?: string | null;
          used?: number;
          held?: number;
          hold_expires_at?: string | null;
          updated_at?: string;
          carried?: number;
        };
        Update: {
          org_id?: string;
          feature?: string;
          period_start?: string;
          period_end?: string | null;
          used?: number;
          held?: number;
          hold_expires_at?: string | null;
          updated_at?: string;
          carried?: number;
        };
      };
      /** Append-only usage; the idempotency key is unique per organization */
      usage_events: {
        Row: {
          org_id: string;
          id: number;
          feature: string;
          quantity: number;
          idempotency_key: string | null;
          occurred_at: string;
          period_start: string;
          metered: boolean;
          counted_inline: boolean;
          hold_id: string | null;
          recorded_by: string | null;
          recorded_at: string;
        };
        Insert: {
          org_id: string;
          id?: never;
          feature: string;
          quantity: number;
          idempotency_key?: string | null;
          occurred_at?: string;
          period_start: string;
          metered?: boolean;
          counted_inline?: boolean;
          hold_id?: string | null;
          recorded_by?: string | null;
          recorded_at?: string;
        };
        Update: {
          org_id?: string;
          id?: never;
          feature?: string;
          quantity?: number;
          idempotency_key?: string | null;
          occurred_at?: string;
          period_start?: string;
          metered?: boolean;
          counted_inline?: boolean;
          hold_id?: string | null;
          recorded_by?: string | null;
          recorded_at?: string;
        };
      };
      /** Reservations against a limit; active holds count until they expire */
      usage_holds: {
        Row: {
          org_id: string;
          id: string;
          feature: string;
          quantity: number;
          period_start: string;
          expires_at: string;
          status: string;
          actual_quantity: number | null;
          created_by: string | null;
          created_at: string;
          closed_at: string | null;
        };
        Insert: {
          org_id: string;
          id?: string;
          feature: string;
          quantity: number;
          period_start: string;
          expires_at: string;
          status?: string;
          actual_quantity?: number | null;
          created_by?: string | null;
          created_at?: string;
          closed_at?: string | null;
        };
        Update: {
          org_id?: string;
          id?: string;
          feature?: string;
          quantity?: number;
          period_start?: string;
          expires_at?: string;
          status?: string;
          actual_quantity?: number | null;
          created_by?: string | null;
          created_at?: string;
          closed_at?: string | null;
        };
      };
      /** Webhook inbox: every event once (deliveries counts re-deliveries), with its status and why */
      webhook_events: {
        Row: {
          id: number;
          provider: string;
          event_id: string;
          event_type: string;
          event_created: string | null;
          livemode: boolean | null;
          api_version: string | null;
          org_id: string | null;
          stripe_object_id: string | null;
          stripe_customer_id: string | null;
          stripe_subscription_id: string | null;
          payload: Json;
          status: string;
          error: string | null;
          attempts: number;
          deliveries: number;
          received_at: string;
          last_delivery_at: string;
          processed_at: string | null;
        };
        Insert: {
          id?: never;
          provider?: string;
          event_id: string;
          event_type: string;
          event_created?: string | null;
          livemode?: boolean | null;
          api_version?: string | null;
          org_id?: string | null;
          stripe_object_id?: string | null;
          stripe_customer_id?: string | null;
          stripe_subscription_id?: string | null;
          payload: Json;
          status?: string;
          error?: string | null;
          attempts?: number;
          deliveries?: number;
          received_at?: string;
          last_delivery_at?: string;
          processed_at?: string | null;
        };
        Update: {
          id?: never;
          provider?: string;
          event_id?: string;
          event_type?: string;
          event_created?: string | null;
          livemode?: boolean | null;
          api_version?: string | null;
          org_id?: string | null;
          stripe_object_id?: string | null;
          stripe_customer_id?: string | null;
          stripe_subscription_id?: string | null;
          payload?: Json;
          status?: string;
          error?: string | null;
          attempts?: number;
          deliveries?: number;
          received_at?: string;
          last_delivery_at?: string;
          processed_at?: string | null;
        };
      };
      /** Webhook signing secrets; active while expires_at is NULL or in the future (no policy: functions only) */
      webhook_secrets: {
        Row: {
          id: number;
          provider: string;
          secret: string;
          created_at: string;
          expires_at: string | null;
        };
        Insert: {
          id?: never;
          provider?: string;
          secret: string;
          created_at?: string;
          expires_at?: string | null;
        };
        Update: {
          id?: never;
          provider?: string;
          secret?: string;
          created_at?: string;
          expires_at?: string | null;
        };
      };
    };
    Views: {
      /** One row per organization: plan, subscription, usage period, usage against limits, next invoice (owners/admins) */
      billing_dashboard: {
        Row: {
          org_id: string | null;
          org_name: string | null;
          plan_id: string | null;
          plan_name: string | null;
          plan_amount: number | null;
          plan_currency: string | null;
          plan_interval: string | null;
          subscription_status: string | null;
          stripe_subscription_id: string | null;
          stripe_customer_id: string | null;
          cancel_at_period_end: boolean | null;
          period_start: string | null;
          period_end: string | null;
          ai_runs_used: number | null;
          ai_runs_max: number | null;
          ai_runs_percent: number | null;
          cms_items_used: number | null;
          cms_items_max: number | null;
          cms_items_percent: number | null;
          seats_used: number | null;
          seats_max: number | null;
          seats_percent: number | null;
          usage: Json | null;
          next_invoice_currency: string | null;
          next_invoice_base_amount: number | null;
          next_invoice_metered_quantity: number | null;
          next_invoice_metered_amount: number | null;
          next_invoice_total: number | null;
        };
      };
      /** Pending CMS approval requests with page, requester, age and the inputs of ipai.cms_diff_html() */
      cms_approval_queue: {
        Row: {
          org_id: string | null;
          org_name: string | null;
          approval_id: string | null;
          page_id: string | null;
          page_slug: string | null;
          page_title: string | null;
          page_status: Database["ipai"]["Enums"]["page_status"] | null;
          requested_by: string | null;
          requested_at: string | null;
          age: string | null;
          request_comment: string | null;
          diff_from_version: number | null;
          diff_to_version: number | null;
          can_review: boolean | null;
        };
      };
      /** Pages with status_live: the status readers see now, counting due schedules as executed */
      cms_live_pages: {
        Row: {
          org_id: string | null;
          id: string | null;
          slug: string | null;
          title: string | null;
          body: string | null;
          metadata: Json | null;
          content_type_id: string | null;
          version: number | null;
          status: Database["ipai"]["Enums"]["page_status"] | null;
          status_live: Database["ipai"]["Enums"]["page_status"] | null;
          is_live: boolean | null;
          live_since: string | null;
          next_publish_at: string | null;
          next_unpublish_at: string | null;
          published_at: string | null;
          updated_at: string | null;
        };
      };
      /** One row per Stripe invoice; amounts in the smallest currency unit and in currency units (_decimal) */
      invoice_history: {
        Row: {
          org_id: string | null;
          org_name: string | null;
          stripe_invoice_id: string | null;
          stripe_subscription_id: string | null;
          status: string | null;
          currency: string | null;
          amount_due: number | null;
          amount_paid: number | null;
          amount_remaining: number | null;
          amount_due_decimal: number | null;
          amount_paid_decimal: number | null;
          period_start: string | null;
          period_end: string | null;
          paid_at: string | null;
          attempt_count: number | null;
          hosted_invoice_url: string | null;
          invoice_pdf: string | null;
          created_at: string | null;
          updated_at: string | null;
        };
      };
      /** One row per organization: members with roles, pending invitations (owners/admins), seats used of max */
      org_dashboard: {
        Row: {
          org_id: string | null;
          org_name: string | null;
          plan_id: string | null;
          billing_email: string | null;
          timezone: string | null;
          my_role: Database["ipai"]["Enums"]["org_role"] | null;
          member_count: number | null;
          members: Json | null;
          pending_invitation_count: number | null;
          pending_invitations: Json | null;
          seats_used: number | null;
          seats_max: number | null;
          seats_remaining: number | null;
          created_at: string | null;
        };
      };
      /** Usage per organization, feature and period (live counters; refresh_org_usage repairs drift) */
      org_usage_current: {
        Row: {
          org_id: string | null;
          feature: string | null;
          period_start: string | null;
          used: number | null;
          period_end: string | null;
          reserved: number | null;
          is_current: boolean | null;
          updated_at: string | null;
        };
      };
    };
    Functions: {
      accept_invitation: {
        Args: {
          token: string;
        };
        Returns: string;
      };
      add_member: {
        Args: {
          org_id: string;
          user_id: string;
          role?: string;
        };
        Returns: undefined;
      };
      caller_is_privileged: {
        Args: Record<PropertyKey, never>;
        Returns: boolean;
      };
      check_entitlement: {
        Args: {
          org_id: string;
          feature: string;
          quantity?: number;
        };
        Returns: Database["ipai"]["CompositeTypes"]["entitlement_check"];
      };
      checkout_session_params: {
        Args: {
          org_id: string;
          plan_id: string;
          success_url: string;
          cancel_url: string;
        };
        Returns: Json;
      };
      cms_approve: {
        Args: {
          page_id: string;
          comment?: string;
        };
        Returns: string;
      };
      cms_archive: {
        Args: {
          page_id: string;
        };
        Returns: number;
      };
      cms_cancel_schedule: {
        Args: {
          schedule_id: number;
        };
        Returns: boolean;
      };
      cms_create_page: {
        Args: {
          org_id: string;
          title: string;
          body: string;
          slug?: string;
          content_type?: string;
          metadata?: Json;
        };
        Returns: string;
      };
      cms_diff_html: {
        Args: {
          page_id: string;
          from_version: number;
          to_version: number;
        };
        Returns: string;
      };
      cms_metadata_problems: {
        Args: {
          sch: Json;
          val: Json;
          path?: string;
        };
        Returns: string[];
      };
      cms_publish: {
        Args: {
          page_id: string;
        };
        Returns: number;
      };
      cms_reject: {
        Args: {
          page_id: string;
          comment: string;
        };
        Returns: string;
      };
      cms_request_approval: {
        Args: {
          page_id: string;
          comment?: string;
        };
        Returns: string;
      };
      cms_schedule_publish: {
        Args: {
          page_id: string;
          run_at: string;
          action?: string;
        };
        Returns: number;
      };
      cms_slugify: {
        Args: {
          title: string;
        };
        Returns: string;
      };
      cms_unpublish: {
        Args: {
          page_id: string;
        };
        Returns: number;
      };
      consume_entitlement: {
        Args: {
          org_id: string;
          feature: string;
          quantity?: number;
          idempotency_key?: string;
        };
        Returns: Database["ipai"]["CompositeTypes"]["entitlement_check"];
      };
      create_organization: {
        Args: {
          name: string;
          owner?: string;
          billing_email?: string;
          timezone?: string;
        };
        Returns: string;
      };
      create_supabase_roles: {
        Args: Record<PropertyKey, never>;
        Returns: string;
      };
      current_user_id: {
        Args: Record<PropertyKey, never>;
        Returns: string;
      };
      diff_words: {
        Args: {
          old: string;
          new: string;
        };
        Returns: {
          op: string | null;
          chunk: string | null;
        }[];
      };
      email_is_valid: {
        Args: {
          email: string;
        };
        Returns: boolean;
      };
      finalize_hold: {
        Args: {
          hold_id: string;
          actual_quantity: number;
        };
        Returns: boolean;
      };
      health: {
        Args: Record<PropertyKey, never>;
        Returns: {
          name: string | null;
          status: string | null;
          detail: string | null;
        }[];
      };
      install_schema: {
        Args: {
          distributed?: boolean;
        };
        Returns: string;
      };
      invite_member:
        | {
            Args: {
              org_id: string;
              email: string;
              role?: string;
            };
            Returns: string;
          }
        | {
            Args: {
              org_id: string;
              email: string;
              role: string;
              expires_in: string;
            };
            Returns: string;
          };
      is_distributed: {
        Args: Record<PropertyKey, never>;
        Returns: boolean;
      };
      is_org_member: {
        Args: {
          org_id: string;
          min_role?: Database["ipai"]["Enums"]["org_role"];
        };
        Returns: boolean;
      };
      normalize_email: {
        Args: {
          email: string;
        };
        Returns: string;
      };
      org_role_of: {
        Args: {
          org_id: string;
        };
        Returns: Database["ipai"]["Enums"]["org_role"];
      };
      outbox_claim: {
        Args: {
          topic: string;
          max_rows?: number;
          claim_timeout?: string;
        };
        Returns: {
          id: number | null;
          org_id: string | null;
          topic: string | null;
          payload: Json | null;
          created_at: string | null;
        }[];
      };
      outbox_lease: {
        Args: {
          topic: string;
          max_rows?: number;
          lease?: string;
        };
        Returns: {
          id: number | null;
          org_id: string | null;
          topic: string | null;
          payload: Json | null;
          created_at: string | null;
          attempts: number | null;
          in_doubt: boolean | null;
          given_up: string | null;
        }[];
      };
      outbox_lease_meter_events: {
        Args: {
          max_events?: number;
          lease?: string;
          aggregate_min?: number;
          aggregate_max?: number;
        };
        Returns: {
          identifier: string | null;
          ids: number[] | null;
          org_id: string | null;
          event_name: string | null;
          stripe_customer_id: string | null;
          value: number | null;
          timestamp: number | null;
          attempts: number | null;
          in_doubt: boolean | null;
          given_up: string | null;
        }[];
      };
      outbox_mark_failed: {
        Args: {
          id: number;
          error: string;
          retry_after?: string;
          permanent?: boolean;
          maybe_delivered?: boolean;
        };
        Returns: string;
      };
      outbox_mark_failed_many: {
        Args: {
          ids: number[];
          error: string;
          retry_after?: string;
          permanent?: boolean;
          maybe_delivered?: boolean;
        };
        Returns: string;
      };
      outbox_mark_sent: {
        Args: {
          id: number;
        };
        Returns: boolean;
      };
      outbox_mark_sent_many: {
        Args: {
          ids: number[];
        };
        Returns: number;
      };
      outbox_next_due: {
        Args: {
          lease?: string;
        };
        Returns: string;
      };
      outbox_retry: {
        Args: {
          id: number;
        };
        Returns: boolean;
      };
      preview_invoice: {
        Args: {
          org_id: string;
        };
        Returns: {
          plan_id: string | null;
          currency: string | null;
          period_start: string | null;
          period_end: string | null;
          base_amount: number | null;
          metered_quantity: number | null;
          metered_amount: number | null;
          total: number | null;
        };
      };
      realtime_tables: {
        Args: Record<PropertyKey, never>;
        Returns: string[];
      };
      record_usage: {
        Args: {
          org_id: string;
          feature: string;
          quantity?: number;
          idempotency_key?: string;
          occurred_at?: string;
        };
        Returns: boolean;
      };
      recover_stuck_runs: {
        Args: Record<PropertyKey, never>;
        Returns: number;
      };
      refresh_org_usage: {
        Args: Record<PropertyKey, never>;
        Returns: number;
      };
      release_hold: {
        Args: {
          hold_id: string;
        };
        Returns: boolean;
      };
      remove_member: {
        Args: {
          org_id: string;
          user_id: string;
        };
        Returns: undefined;
      };
      require_org_role: {
        Args: {
          org_id: string;
          min_role?: Database["ipai"]["Enums"]["org_role"];
        };
        Returns: undefined;
      };
      reserve_entitlement: {
        Args: {
          org_id: string;
          feature: string;
          quantity: number;
          ttl: string;
        };
        Returns: string;
      };
      retire_stripe_webhook_secret: {
        Args: {
          secret: string;
          at?: string;
        };
        Returns: number;
      };
      revoke_invitation: {
        Args: {
          invitation_id: string;
        };
        Returns: boolean;
      };
      run_due_publications: {
        Args: Record<PropertyKey, never>;
        Returns: number;
      };
      schedule_jobs: {
        Args: Record<PropertyKey, never>;
        Returns: {
          jobname: string | null;
          schedule: string | null;
          command: string | null;
          jobid: number | null;
        }[];
      };
      scheduler_status: {
        Args: Record<PropertyKey, never>;
        Returns: {
          preloaded: boolean | null;
          enabled: boolean | null;
          database: string | null;
          serves_this_database: boolean | null;
          worker_pid: number | null;
          state: string | null;
          started_at: string | null;
          heartbeat_at: string | null;
          next_wakeup_at: string | null;
          executed: number | null;
          failed: number | null;
          deferred: number | null;
          recovered: number | null;
          last_lateness: string | null;
          max_lateness: string | null;
          last_executed_at: string | null;
          worker_starts: number | null;
          helpers: number | null;
        };
      };
      scheduler_wakeup: {
        Args: Record<PropertyKey, never>;
        Returns: boolean;
      };
      set_member_role: {
        Args: {
          org_id: string;
          user_id: string;
          role: string;
        };
        Returns: undefined;
      };
      set_stripe_webhook_secret: {
        Args: {
          secret: string;
          expires_at?: string;
        };
        Returns: number;
      };
      standard_webhook_sign:
        | {
            Args: {
              payload: string;
              msg_id: string;
              msg_timestamp: string;
              secret: string;
            };
            Returns: string;
          }
        | {
            Args: {
              payload: string;
              msg_id: string;
              msg_timestamp: string;
              secret: string;
            };
            Returns: string;
          };
      standard_webhook_verify:
        | {
            Args: {
              payload: string;
              msg_id: string;
              msg_timestamp: string;
              signature_header: string;
              secret: string;
              tolerance_seconds?: number;
              now?: string;
            };
            Returns: boolean;
          }
        | {
            Args: {
              payload: string;
              msg_id: string;
              msg_timestamp: string;
              signature_header: string;
              secret: string;
              tolerance_seconds?: number;
              now?: string;
            };
            Returns: boolean;
          };
      stripe_sign:
        | {
            Args: {
              payload: string;
              secret: string;
              t?: string;
            };
            Returns: string;
          }
        | {
            Args: {
              payload: string;
              secret: string;
              t?: string;
            };
            Returns: string;
          };
      stripe_verify_signature:
        | {
            Args: {
              payload: string;
              signature_header: string;
              secret: string;
              tolerance_seconds?: number;
              now?: string;
            };
            Returns: boolean;
          }
        | {
            Args: {
              payload: string;
              signature_header: string;
              secret: string;
              tolerance_seconds?: number;
              now?: string;
            };
            Returns: boolean;
          };
      stripe_webhook:
        | {
            Args: {
              payload: string;
              signature_header: string;
            };
            Returns: {
              status: string | null;
              event_id: string | null;
              event_type: string | null;
            };
          }
        | {
            Args: {
              payload: string;
              signature_header: string;
            };
            Returns: {
              status: string | null;
              event_id: string | null;
              event_type: string | null;
            };
          };
      stripe_webhook_secrets: {
        Args: Record<PropertyKey, never>;
        Returns: {
          id: number | null;
          fingerprint: string | null;
          created_at: string | null;
          expires_at: string | null;
          active: boolean | null;
        }[];
      };
      subscription_grants_plan: {
        Args: {
          status: string;
        };
        Returns: boolean;
      };
      transfer_ownership: {
        Args: {
          org_id: string;
          new_owner: string;
        };
        Returns: undefined;
      };
      typescript_types: {
        Args: Record<PropertyKey, never>;
        Returns: string;
      };
      unschedule_jobs: {
        Args: Record<PropertyKey, never>;
        Returns: number;
      };
      update_organization_settings: {
        Args: {
          org_id: string;
          name?: string;
          billing_email?: string;
          timezone?: string;
        };
        Returns: undefined;
      };
      usage_period: {
        Args: {
          org_id: string;
          at?: string;
        };
        Returns: {
          period_start: string | null;
          period_end: string | null;
        };
      };
      user_org_ids: {
        Args: {
          min_role?: Database["ipai"]["Enums"]["org_role"];
        };
        Returns: string[];
      };
    };
    Enums: {
      org_role: "viewer" | "editor" | "admin" | "owner";
      page_status: "draft" | "pending" | "approved" | "published" | "archived";
      schedule_action: "publish" | "unpublish";
      schedule_status: "pending" | "running" | "done" | "failed";
    };
    CompositeTypes: {
      entitlement_check: {
        allowed: boolean | null;
        feature: string | null;
        plan_id: string | null;
        current: number | null;
        max: number | null;
        remaining: number | null;
        reason: string | null;
      };
    };
  };
};

type Schema = Database["ipai"];

/** The row type of a table or view: Row<"organizations">. */
export type Row<T extends keyof Schema["Tables"] | keyof Schema["Views"]> =
  T extends keyof Schema["Tables"] ? Schema["Tables"][T]["Row"]
  : T extends keyof Schema["Views"] ? Schema["Views"][T]["Row"]
  : never;
/** What an INSERT takes: Insert<"cms_pages">. */
export type Insert<T extends keyof Schema["Tables"]> = Schema["Tables"][T]["Insert"];
/** What an UPDATE takes: Update<"cms_pages">. */
export type Update<T extends keyof Schema["Tables"]> = Schema["Tables"][T]["Update"];
/** An enum: Enum<"org_role">. */
export type Enum<T extends keyof Schema["Enums"]> = Schema["Enums"][T];
/** Arguments of a function: Args<"invite_member">. */
export type Args<T extends keyof Schema["Functions"]> = Schema["Functions"][T]["Args"];
/** Result of a function: Returns<"check_entitlement">. */
export type Returns<T extends keyof Schema["Functions"]> = Schema["Functions"][T]["Returns"];
