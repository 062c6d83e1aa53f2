// A real OpenID Connect provider for the console's sign-in tests: npm's
// `oidc-provider` (pinned in package-lock.json), with one confidential client for the
// bridge and three people whose `groups` claim decides what the console lets them do.
// Installed under target/oidc-peer by scripts/peer/install-oidc.sh.
//
//   node target/oidc-peer/provider.mjs
//
// Env: OIDC_CLIENT_ID (default scim-bridge), OIDC_CLIENT_SECRET (required),
//      OIDC_HOST (default localhost: another site than the bridge's 127.0.0.1, so
//      the browser test crosses sites as a real deployment does), OIDC_PORT (0: any).
// Prints one JSON line {"issuer": "..."} on stdout once it listens.
//
// The login form is oidc-provider's own development form (login + password; any
// password is accepted for a known login). Consent is skipped for the bridge, as a
// firm's IdP does for an application its admins registered.
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

// Stdout carries the one line the test reads; the provider's notices go to stderr.
console.log = console.error;
console.info = console.error;

const people = {
  ada: { name: 'Ada Lovelace', email: 'ada@firm.example', groups: ['Console-Admins', 'Everyone'] },
  grace: { name: 'Grace Hopper', email: 'grace@firm.example', groups: ['Console-Readers', 'Everyone'] },
  mallory: { name: 'Mallory Jones', email: 'mallory@firm.example', groups: ['Marketing', 'Everyone'] },
};

const clientId = process.env.OIDC_CLIENT_ID || 'scim-bridge';
const clientSecret = process.env.OIDC_CLIENT_SECRET;
if (!clientSecret) {
  console.error('OIDC_CLIENT_SECRET is required');
  process.exit(2);
}
const host = process.env.OIDC_HOST || 'localhost';

// A fresh RS256 signing key per run.
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: `k-${Date.now()}`, alg: 'RS256', use: 'sig' };

const server = http.createServer();
await new Promise((resolve) => server.listen(Number(process.env.OIDC_PORT || 0), '127.0.0.1', resolve));
const issuer = `http://${host}:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    // The bridge listens on a port chosen at test time; see redirectUriAllowed below.
    redirect_uris: ['http://127.0.0.1/ui/signin/oidc/callback'],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email'],
    groups: ['groups'],
  },
  // Scope claims in the ID token itself, as Entra and Okta put groups there.
  conformIdTokenClaims: false,
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    const p = people[id];
    if (!p) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, name: p.name, preferred_username: id, email: p.email, groups: p.groups };
      },
    };
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile email groups');
    await grant.save();
    return grant;
  },
});

// Any port of the bridge on this machine, the console's callback path only.
const callback = /^http:\/\/127\.0\.0\.1:\d+\/ui\/signin\/oidc\/callback$/;
const allowed = provider.Client.prototype.redirectUriAllowed;
provider.Client.prototype.redirectUriAllowed = function redirectUriAllowed(uri) {
  return callback.test(uri) || allowed.call(this, uri);
};

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
