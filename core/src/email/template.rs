//! Message templates with `{{placeholder}}` substitution.

/// A message's subject, plain-text and HTML bodies, with `{{name}}`-style placeholders.
///
/// The engine's messages fill `{{app_name}}`, `{{name}}` (the user's name), `{{email}}` (the
/// recipient), `{{url}}` (the link) and `{{expires_in_minutes}}`; the change-email
/// confirmation also `{{new_email}}`. Values are inserted as they are into the
/// subject and the text part, and HTML-escaped into the HTML part, so a user whose name is
/// `<script>` cannot put markup into a message. Unknown placeholders stay as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailTemplate {
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
}

impl EmailTemplate {
    /// A template from its three parts.
    pub fn new(
        subject: impl Into<String>,
        text: impl Into<String>,
        html: impl Into<String>,
    ) -> Self {
        Self {
            subject: subject.into(),
            text: text.into(),
            html: html.into(),
        }
    }

    /// The subject, text and HTML with `vars` filled in.
    pub fn render(&self, vars: &[(&str, &str)]) -> (String, String, String) {
        (
            fill(&self.subject, vars, false),
            fill(&self.text, vars, false),
            fill(&self.html, vars, true),
        )
    }
}

/// The templates of the engine's own messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailTemplates {
    /// The email verification message (`{{url}}` verifies the address).
    pub verify_email: EmailTemplate,
    /// The password reset message (`{{url}}` leads to the reset form).
    pub reset_password: EmailTemplate,
    /// The message to the current address when the user asks to change it to
    /// `{{new_email}}` (`{{url}}` confirms; a verification link then goes to the new one).
    pub change_email_confirmation: EmailTemplate,
    /// The message that confirms deleting an account (`{{url}}` deletes it).
    pub delete_account: EmailTemplate,
    /// The notice to the owner of an address someone tried to sign up with again (no link:
    /// the sign-up answered as for a new account, so nobody learnt the account exists).
    pub existing_account: EmailTemplate,
}

impl Default for EmailTemplates {
    fn default() -> Self {
        Self {
            verify_email: EmailTemplate::new(
                "Verify your email address for {{app_name}}",
                "Hello {{name}},\n\nPlease verify your email address for {{app_name}} by opening this link:\n\n{{url}}\n\nThe link expires in {{expires_in_minutes}} minutes. If you did not ask for this, ignore this message.\n",
                HTML_VERIFY,
            ),
            reset_password: EmailTemplate::new(
                "Reset your {{app_name}} password",
                "Hello {{name}},\n\nSomeone asked to reset the password of your {{app_name}} account. To choose a new password, open this link:\n\n{{url}}\n\nThe link expires in {{expires_in_minutes}} minutes. If you did not ask for this, ignore this message; your password stays as it is.\n",
                HTML_RESET,
            ),
            change_email_confirmation: EmailTemplate::new(
                "Confirm the new email address of your {{app_name}} account",
                "Hello {{name}},\n\nSomeone asked to change the email address of your {{app_name}} account from {{email}} to {{new_email}}. To allow it, open this link:\n\n{{url}}\n\nA link to verify the new address will then be sent to {{new_email}}. The link expires in {{expires_in_minutes}} minutes. If you did not ask for this, ignore this message; your address stays as it is.\n",
                HTML_CHANGE_EMAIL,
            ),
            delete_account: EmailTemplate::new(
                "Confirm the deletion of your {{app_name}} account",
                "Hello {{name}},\n\nSomeone asked to delete your {{app_name}} account ({{email}}). To delete it for good, open this link while signed in:\n\n{{url}}\n\nThe link expires in {{expires_in_minutes}} minutes. If you did not ask for this, ignore this message; your account stays as it is.\n",
                HTML_DELETE_ACCOUNT,
            ),
            existing_account: EmailTemplate::new(
                "Someone tried to sign up for {{app_name}} with your address",
                "Hello {{name}},\n\nSomeone tried to create a new {{app_name}} account with {{email}}, which already has one. No second account was made and nothing about yours has changed.\n\nIf it was you, sign in with your password instead, or ask for a password reset if you have forgotten it. If it was not you, ignore this message.\n",
                HTML_EXISTING_ACCOUNT,
            ),
        }
    }
}

const HTML_VERIFY: &str = r#"<!doctype html>
<html><body style="font-family:sans-serif;line-height:1.5">
<p>Hello {{name}},</p>
<p>Please verify your email address for {{app_name}}.</p>
<p><a href="{{url}}">Verify my email address</a></p>
<p>The link expires in {{expires_in_minutes}} minutes. If you did not ask for this, ignore this message.</p>
</body></html>
"#;

const HTML_RESET: &str = r#"<!doctype html>
<html><body style="font-family:sans-serif;line-height:1.5">
<p>Hello {{name}},</p>
<p>Someone asked to reset the password of your {{app_name}} account.</p>
<p><a href="{{url}}">Choose a new password</a></p>
<p>The link expires in {{expires_in_minutes}} minutes. If you did not ask for this, ignore this message; your password stays as it is.</p>
</body></html>
"#;

const HTML_CHANGE_EMAIL: &str = r#"<!doctype html>
<html><body style="font-family:sans-serif;line-height:1.5">
<p>Hello {{name}},</p>
<p>Someone asked to change the email address of your {{app_name}} account from {{email}} to {{new_email}}.</p>
<p><a href="{{url}}">Allow the change</a></p>
<p>A link to verify the new address will then be sent to {{new_email}}. The link expires in {{expires_in_minutes}} minutes. If you did not ask for this, ignore this message; your address stays as it is.</p>
</body></html>
"#;

const HTML_DELETE_ACCOUNT: &str = r#"<!doctype html>
<html><body style="font-family:sans-serif;line-height:1.5">
<p>Hello {{name}},</p>
<p>Someone asked to delete your {{app_name}} account ({{email}}).</p>
<p><a href="{{url}}">Delete my account</a> (open it while signed in)</p>
<p>The link expires in {{expires_in_minutes}} minutes. If you did not ask for this, ignore this message; your account stays as it is.</p>
</body></html>
"#;

const HTML_EXISTING_ACCOUNT: &str = r#"<!doctype html>
<html><body style="font-family:sans-serif;line-height:1.5">
<p>Hello {{name}},</p>
<p>Someone tried to create a new {{app_name}} account with {{email}}, which already has one. No second account was made and nothing about yours has changed.</p>
<p>If it was you, sign in with your password instead, or ask for a password reset if you have forgotten it. If it was not you, ignore this message.</p>
</body></html>
"#;

/// Escapes `&`, `<`, `>`, `"` and `'` for HTML text and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn fill(template: &str, vars: &[(&str, &str)], html: bool) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let key = after[..end].trim();
        match vars.iter().find(|(k, _)| *k == key) {
            Some((_, v)) if html => out.push_str(&html_escape(v)),
            Some((_, v)) => out.push_str(v),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_placeholders_and_escapes_html_only() {
        let t = EmailTemplate::new(
            "Hi {{ name }}",
            "{{name}}: {{url}} {{unknown}}",
            "<b>{{name}}</b> <a href=\"{{url}}\">x</a> {{unknown}} {{open",
        );
        let (s, text, html) = t.render(&[
            ("name", "<script>\"x\" & 'y'</script>"),
            ("url", "https://a.test/v?token=1&cb=%2F"),
        ]);
        assert_eq!(s, "Hi <script>\"x\" & 'y'</script>");
        assert_eq!(
            text,
            "<script>\"x\" & 'y'</script>: https://a.test/v?token=1&cb=%2F {{unknown}}"
        );
        assert_eq!(
            html,
            "<b>&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;</b> <a href=\"https://a.test/v?token=1&amp;cb=%2F\">x</a> {{unknown}} {{open"
        );
    }

    #[test]
    fn default_templates_use_every_value() {
        let all = EmailTemplates::default();
        for t in [
            all.verify_email,
            all.reset_password,
            all.change_email_confirmation,
            all.delete_account,
        ] {
            let (s, text, html) = t.render(&[
                ("app_name", "App"),
                ("name", "Ada"),
                ("email", "ada@example.com"),
                ("new_email", "new@example.com"),
                ("url", "https://x.test/l"),
                ("expires_in_minutes", "60"),
            ]);
            assert!(s.contains("App"));
            for part in [&text, &html] {
                assert!(part.contains("Ada") && part.contains("https://x.test/l"));
                assert!(part.contains("60 minutes") && !part.contains("{{"));
            }
        }
        let (s, text, html) = all.existing_account.render(&[
            ("app_name", "App"),
            ("name", "<Ada>"),
            ("email", "ada@example.com"),
        ]);
        assert!(s.contains("App") && !s.contains("{{"));
        assert!(text.contains("<Ada>") && text.contains("ada@example.com"));
        assert!(html.contains("&lt;Ada&gt;") && !html.contains("{{"));
    }
}
