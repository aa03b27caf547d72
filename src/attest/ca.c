/* nectl's local CA: a P-384 root and intermediate kept under the state
 * directory, created on first need, that issue the short-lived per-enclave
 * leaf certificates the emulated NSM signs attestation documents with. The
 * certificates are shaped like AWS's chain (reference §5.5). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "nectl/attest.h"

#define CA_ROOT_DAYS  (30 * 365)
#define CA_INTER_DAYS (10 * 365)

/* Subjects: AWS's attribute order, nectl's names. */
#define CA_ROOT_CN     "nectl.local-attestation-root"
#define CA_INTER_CN    "nectl.local-attestation-intermediate"
#define CA_LEAF_SUFFIX ".local.nectl"

static X509_NAME *ca_name(const char *cn)
{
	X509_NAME *name = X509_NAME_new();

	if (!name ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"nectl", -1,
					-1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_ASC,
					(const unsigned char *)"local attestation", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
					0)) {
		X509_NAME_free(name);
		return NULL;
	}
	return name;
}

static EVP_PKEY *ca_new_key(void)
{
	return EVP_EC_gen("P-384");
}

/* A random positive 127-bit serial, as CAs use. */
static int ca_set_serial(X509 *cert)
{
	unsigned char raw[16];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	raw[0] &= 0x7f;
	raw[0] |= 0x01;
	bn = BN_bin2bn(raw, sizeof(raw), NULL);
	ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}

static int ca_add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
	ok = ext && X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* The extensions of one certificate of the chain, AWS's per level. */
struct ca_shape {
	const char *basic;
	const char *usage;
	bool key_ids;
};

static const struct ca_shape ca_root_shape = {
    "critical,CA:TRUE", "critical,digitalSignature,keyCertSign,cRLSign", true};
static const struct ca_shape ca_inter_shape = {
    "critical,CA:TRUE,pathlen:0", "critical,digitalSignature,keyCertSign,cRLSign", true};
static const struct ca_shape ca_leaf_shape = {"critical,CA:FALSE",
					      "digitalSignature,nonRepudiation", false};

static int ca_add_shape(X509 *cert, X509 *issuer, const struct ca_shape *shape)
{
	if (ca_add_ext(cert, issuer, NID_basic_constraints, shape->basic) ||
	    ca_add_ext(cert, issuer, NID_key_usage, shape->usage))
		return -1;
	if (!shape->key_ids)
		return 0;
	if (ca_add_ext(cert, issuer, NID_subject_key_identifier, "hash"))
		return -1;
	/* A self-signed root needs no authority key identifier. */
	return issuer == cert
		   ? 0
		   : ca_add_ext(cert, issuer, NID_authority_key_identifier, "keyid:always");
}

struct ca_request {
	const char *cn;
	EVP_PKEY *key;	      /* the subject's */
	X509 *issuer;	      /* NULL: self-signed */
	EVP_PKEY *issuer_key; /* NULL: key */
	long seconds;
	const struct ca_shape *shape;
};

static int ca_fill(X509 *cert, const struct ca_request *r)
{
	X509_NAME *name = ca_name(r->cn);
	X509 *issuer = r->issuer ? r->issuer : cert;
	int ok;

	ok = name && X509_set_version(cert, 2) && ca_set_serial(cert) == 0 &&
	     X509_set_subject_name(cert, name) &&
	     X509_set_issuer_name(cert, X509_get_subject_name(issuer)) &&
	     X509_gmtime_adj(X509_getm_notBefore(cert), 0) &&
	     X509_gmtime_adj(X509_getm_notAfter(cert), r->seconds) &&
	     X509_set_pubkey(cert, r->key) && ca_add_shape(cert, issuer, r->shape) == 0 &&
	     X509_sign(cert, r->issuer_key ? r->issuer_key : r->key, EVP_sha384()) > 0;
	X509_NAME_free(name);
	return ok ? 0 : -1;
}

static X509 *ca_make_cert(const struct ca_request *r)
{
	X509 *cert = X509_new();

	if (cert && ca_fill(cert, r) == 0)
		return cert;
	X509_free(cert);
	return NULL;
}

int attest_ca_issue_leaf(const struct attest_ca *ca, const char *module_id, uint64_t lifetime_s,
			 EVP_PKEY **key, uint8_t **cert_der, size_t *cert_len,
			 struct nectl_err *err)
{
	char cn[ATTEST_MODULE_ID_MAX + sizeof(CA_LEAF_SUFFIX)];
	struct ca_request r = {cn, NULL, ca->inter, ca->inter_key, 0, &ca_leaf_shape};
	unsigned char *der = NULL;
	X509 *cert = NULL;
	int n = -1;

	*key = NULL;
	if (!module_id[0] || strlen(module_id) > 64 - strlen(CA_LEAF_SUFFIX))
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "module id '%s': must be 1..%zu characters", module_id,
				     64 - strlen(CA_LEAF_SUFFIX));
	if (lifetime_s == 0 || lifetime_s > (uint64_t)CA_INTER_DAYS * 86400)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "leaf lifetime %llu s is out of range",
				     (unsigned long long)lifetime_s);
	snprintf(cn, sizeof(cn), "%s%s", module_id, CA_LEAF_SUFFIX);
	r.seconds = (long)lifetime_s;
	r.key = ca_new_key();
	cert = r.key ? ca_make_cert(&r) : NULL;
	if (cert)
		n = i2d_X509(cert, &der);
	X509_free(cert);
	if (n <= 0) {
		EVP_PKEY_free(r.key);
		return nectl_err_ssl(err, NECTL_ERR_SIGN, "cannot issue a leaf certificate");
	}
	*key = r.key;
	*cert_der = der;
	*cert_len = (size_t)n;
	return 0;
}

int attest_ca_bundle(const struct attest_ca *ca, uint8_t *der[ATTEST_CA_BUNDLE_LEN],
		     size_t len[ATTEST_CA_BUNDLE_LEN], struct nectl_err *err)
{
	X509 *order[ATTEST_CA_BUNDLE_LEN] = {ca->root, ca->inter};

	for (int i = 0; i < ATTEST_CA_BUNDLE_LEN; i++) {
		int n;

		der[i] = NULL;
		n = i2d_X509(order[i], &der[i]);
		if (n <= 0) {
			while (i-- > 0)
				OPENSSL_free(der[i]);
			return nectl_err_ssl(err, NECTL_ERR_SIGN, "cannot encode the CA bundle");
		}
		len[i] = (size_t)n;
	}
	return 0;
}

void attest_ca_free(struct attest_ca *ca)
{
	if (!ca)
		return;
	X509_free(ca->root);
	X509_free(ca->inter);
	EVP_PKEY_free(ca->inter_key);
	free(ca);
}

/* The freshly made CA and the root's key, which only init holds. */
struct ca_new {
	struct attest_ca *ca;
	EVP_PKEY *root_key;
};

static int ca_generate(struct ca_new *n)
{
	struct ca_request root = {CA_ROOT_CN,	 NULL, NULL, NULL, CA_ROOT_DAYS * 86400L,
				  &ca_root_shape};
	struct ca_request inter = {CA_INTER_CN,	   NULL, NULL, NULL, CA_INTER_DAYS * 86400L,
				   &ca_inter_shape};

	n->ca = calloc(1, sizeof(*n->ca));
	n->root_key = ca_new_key();
	if (!n->ca || !n->root_key)
		return -1;
	root.key = n->root_key;
	n->ca->root = ca_make_cert(&root);
	n->ca->inter_key = ca_new_key();
	if (!n->ca->root || !n->ca->inter_key)
		return -1;
	inter.key = n->ca->inter_key;
	inter.issuer = n->ca->root;
	inter.issuer_key = n->root_key;
	n->ca->inter = ca_make_cert(&inter);
	return n->ca->inter ? 0 : -1;
}

static int ca_write_pem(const char *dir, const char *name, mode_t mode, X509 *cert, EVP_PKEY *key,
			struct nectl_err *err)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int fd, ok;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.%ld", dir, name, (long)getpid());
	/* Under the lock, a leftover is a crashed creator's (a reused pid). */
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot create", tmp);
	fp = fdopen(fd, "w");
	if (!fp) {
		close(fd);
		unlink(tmp);
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot open", tmp);
	}
	ok = key ? PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL)
		 : PEM_write_X509(fp, cert);
	ok = ok && fflush(fp) == 0 && fsync(fd) == 0;
	ok = (fclose(fp) == 0) && ok;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return nectl_err_ssl(err, NECTL_ERR_FILE, "%s: cannot write", path);
	}
	return 0;
}

/* The root certificate goes last: its presence means the CA is complete. */
static int ca_store(const char *dir, const struct ca_new *n, struct nectl_err *err)
{
	if (ca_write_pem(dir, "root.key", 0600, NULL, n->root_key, err) ||
	    ca_write_pem(dir, "intermediate.key", 0600, NULL, n->ca->inter_key, err) ||
	    ca_write_pem(dir, "intermediate.pem", 0644, n->ca->inter, NULL, err) ||
	    ca_write_pem(dir, "root.pem", 0644, n->ca->root, NULL, err))
		return -1;
	return 0;
}

static int ca_init_new(const char *dir, struct attest_ca **out, struct nectl_err *err)
{
	struct ca_new n = {0};
	int rc;

	if (ca_generate(&n)) {
		attest_ca_free(n.ca);
		EVP_PKEY_free(n.root_key);
		return nectl_err_ssl(err, NECTL_ERR_SIGN, "cannot create the local CA");
	}
	rc = ca_store(dir, &n, err);
	EVP_PKEY_free(n.root_key);
	if (rc) {
		attest_ca_free(n.ca);
		return -1;
	}
	*out = n.ca;
	return 0;
}

/* Opens dir/name for reading; a key must be the caller's and private. */
static FILE *ca_open(const char *dir, const char *name, bool secret, struct nectl_err *err)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot open", path);
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > 65536) {
		close(fd);
		nectl_err_set(err, NECTL_ERR_FILE, "%s: not a small regular file", path);
		return NULL;
	}
	if (secret && ((st.st_mode & 077) || st.st_uid != geteuid())) {
		close(fd);
		nectl_err_set(err, NECTL_ERR_FILE,
			      "%s: private key is readable by others (mode %04o, owner %u); "
			      "it must be 0600 and yours",
			      path, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
		return NULL;
	}
	return fdopen(fd, "r");
}

static X509 *ca_read_cert(const char *dir, const char *name, struct nectl_err *err)
{
	FILE *fp = ca_open(dir, name, false, err);
	X509 *cert;

	if (!fp)
		return NULL;
	cert = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	if (!cert)
		nectl_err_ssl(err, NECTL_ERR_FILE, "%s/%s: not a PEM certificate", dir, name);
	return cert;
}

static EVP_PKEY *ca_read_key(const char *dir, const char *name, struct nectl_err *err)
{
	FILE *fp = ca_open(dir, name, true, err);
	EVP_PKEY *key;

	if (!fp)
		return NULL;
	/* An empty passphrase, never a prompt: a library must not ask. */
	key = PEM_read_PrivateKey(fp, NULL, NULL, (void *)"");
	fclose(fp);
	if (!key)
		nectl_err_ssl(err, NECTL_ERR_FILE, "%s/%s: not a PEM private key", dir, name);
	return key;
}

/* The files must be one CA: the intermediate signed by the root, its key
 * its own. The root's key is checked for its mode only. */
static int ca_check(const char *dir, const struct attest_ca *ca, struct nectl_err *err)
{
	EVP_PKEY *root_pub = X509_get0_pubkey(ca->root);

	if (!root_pub || X509_verify(ca->inter, root_pub) != 1 ||
	    X509_check_private_key(ca->inter, ca->inter_key) != 1) {
		ERR_clear_error();
		return nectl_err_set(err, NECTL_ERR_FILE,
				     "%s: the intermediate does not belong to the root", dir);
	}
	return 0;
}

static int ca_load(const char *dir, struct attest_ca **out, struct nectl_err *err)
{
	struct attest_ca *ca = calloc(1, sizeof(*ca));
	EVP_PKEY *root_key;

	if (!ca)
		return nectl_err_sys(err, NECTL_ERR_FILE, ENOMEM, "%s", dir);
	root_key = ca_read_key(dir, "root.key", err);
	EVP_PKEY_free(root_key);
	if (root_key && (ca->root = ca_read_cert(dir, "root.pem", err)) &&
	    (ca->inter = ca_read_cert(dir, "intermediate.pem", err)) &&
	    (ca->inter_key = ca_read_key(dir, "intermediate.key", err)) &&
	    ca_check(dir, ca, err) == 0) {
		*out = ca;
		return 0;
	}
	attest_ca_free(ca);
	return -1;
}

static int ca_mkdir(const char *dir, struct nectl_err *err)
{
	char path[PATH_MAX];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path) - 32)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "CA directory '%s': bad path",
				     dir);
	memcpy(path, dir, n + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot create", path);
		*p = '/';
	}
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot create", path);
	return 0;
}

static int ca_lock(const char *dir, struct nectl_err *err)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return nectl_err_sys(err, NECTL_ERR_LOCK, errno, "%s: cannot open", path);
	while (flock(fd, LOCK_EX) != 0) {
		if (errno != EINTR) {
			int e = errno;

			close(fd);
			return nectl_err_sys(err, NECTL_ERR_LOCK, e, "%s: cannot lock", path);
		}
	}
	return fd;
}

int attest_ca_load_or_init(const char *dir, struct attest_ca **out, bool *created,
			   struct nectl_err *err)
{
	char root[PATH_MAX];
	bool made = false;
	int lock, rc;

	*out = NULL;
	if (ca_mkdir(dir, err) < 0)
		return -1;
	lock = ca_lock(dir, err);
	if (lock < 0)
		return -1;
	snprintf(root, sizeof(root), "%s/root.pem", dir);
	if (access(root, F_OK) == 0) {
		rc = ca_load(dir, out, err);
	} else {
		rc = ca_init_new(dir, out, err);
		made = rc == 0;
	}
	close(lock);
	if (created)
		*created = made;
	return rc;
}

int attest_ca_default_dir(char *out, size_t cap, struct nectl_err *err)
{
	const char *state = getenv("NECTL_STATE_DIR");
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	int n;

	if (state && state[0])
		n = snprintf(out, cap, "%s/ca", state);
	else if (geteuid() == 0)
		n = snprintf(out, cap, "/var/lib/nectl/ca");
	else if (xdg && xdg[0] == '/')
		n = snprintf(out, cap, "%s/nectl/ca", xdg);
	else if (home && home[0] == '/')
		n = snprintf(out, cap, "%s/.local/state/nectl/ca", home);
	else
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "no state directory: set NECTL_STATE_DIR or HOME");
	if (n < 0 || (size_t)n >= cap)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "state directory path too long");
	return 0;
}
