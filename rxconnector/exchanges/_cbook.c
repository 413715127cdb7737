/* rxconnector.exchanges._cbook: the compiled order-book core (optional extension).
 *
 * Why it exists: a depth frame of 5-20 levels per side cost ~18 us of pure-Python
 * per-level work (Decimal(str) + finite checks per number, bisect over Decimal keys;
 * benchmarks/RESULTS.md, issue #12). This module does that work on plain integers and
 * builds Decimal objects only for the levels somebody reads.
 *
 * Two parts:
 *
 * 1. pack_levels(raw): JSON text of one side, [["price","qty"], ...], parsed by a
 *    strict fast grammar (plain decimal digits with an optional fraction inside JSON
 *    strings, JSON whitespace between tokens) into a PackedLevels object. Anything the
 *    fast grammar does not accept (exponents, signs, numbers outside the exact range,
 *    escapes, other shapes, broken JSON) is handed, for that call, to the pure-Python
 *    rxconnector.exchanges.wire_levels.pack_levels_py, so results and exception types are
 *    those of parse_levels(orjson.loads(raw)) by construction. The whole side is
 *    validated before anything is returned.
 *
 * 2. CBook: LocalBook's interface (rxconnector/exchanges/book.py) over two sorted C
 *    arrays of levels (best level last, like LocalBook's hot tier, so changes near the
 *    touch move few slots). See the comment above the CBook section for the layout and
 *    the exactness argument.
 *
 * Exactness: a number is kept as (coefficient, exponent) exactly as written, i.e. the
 * pair Decimal(text).as_tuple() holds. A price's sort key is its value scaled by 10^18
 * in a signed 128-bit integer: exact for every price with at most 18 fractional digits
 * below 10^20 (key < 10^38 < 2^127), and equal keys <=> equal Decimal values, which is
 * how LocalBook identifies levels ("1.0" and "1.00" are one level). Every Decimal handed
 * out is built from the text "<coefficient>[.fraction]" or "<coefficient>E+<exp>",
 * which Decimal parses exactly, so digits AND exponent equal Decimal(wire text).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef __int128 i128;
typedef unsigned __int128 u128;

#define SCALE_DIGITS 18       /* keys are prices x 10^18 */
#define MAX_COEF_DIGITS 38    /* 10^38 - 1 < 2^127: every coefficient fits an i128 */

static u128 POW10[MAX_COEF_DIGITS + 1];

static PyObject *DecimalType;      /* decimal.Decimal (strong) */
static PyObject *str_pack_py;      /* interned "pack_levels_py" */
static PyObject *str_local_book;   /* interned "LocalBook" */
static PyObject *str_restore;      /* interned "_restore" */

/* ------------------------------------------------------------------ numbers */

/* One parsed number: coefficient and exponent (value = coef * 10^exp), sign. */
typedef struct {
    u128 coef;
    int exp;
    int sig; /* significant digits of coef (0 for zero) */
    int negative;
} Num;

static int
digits64(uint64_t v)
{
    int d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

/* Strict wire grammar: digits ['.' digits], nothing else. At most 18 fractional
 * digits and 38 significant digits, so that the parse_levels finite/exponent rule
 * (|adjusted| <= 50) holds trivially and every value fits the key range checks below.
 * Returns 1 on success, 0 when the text is not in the fast grammar. */
static int
parse_plain(const char *s, Py_ssize_t len, Num *out)
{
    Py_ssize_t i = 0;
    uint64_t small = 0; /* the first 19 digits: 64-bit arithmetic, the usual case */
    u128 coef;
    int used = 0, sig, frac = 0, int_digits = 0, in_frac = 0;
    for (; i < len; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            if (used == 19)
                break;
            small = small * 10 + (uint64_t)(c - '0');
            used++;
            if (in_frac)
                frac++;
            else
                int_digits++;
        }
        else if (c == '.' && !in_frac) {
            if (int_digits == 0)
                return 0;
            in_frac = 1;
        }
        else {
            return 0;
        }
    }
    coef = small;
    sig = small ? digits64(small) : 0;
    for (; i < len; i++) { /* more than 19 digits: 128-bit, at most 38 significant */
        char c = s[i];
        if (c >= '0' && c <= '9') {
            int d = c - '0';
            if ((sig || d) && ++sig > MAX_COEF_DIGITS)
                return 0;
            coef = coef * 10 + (u128)d;
            if (in_frac)
                frac++;
            else
                int_digits++;
        }
        else if (c == '.' && !in_frac) {
            in_frac = 1;
        }
        else {
            return 0;
        }
    }
    if (int_digits == 0 || (in_frac && frac == 0) || frac > SCALE_DIGITS)
        return 0;
    out->coef = coef;
    out->exp = -frac;
    out->sig = sig;
    out->negative = 0;
    return 1;
}

/* The text str(Decimal) produces for a finite number: ['-'] digits ['.' digits]
 * ['E' ('+'|'-') digits]. Returns 0 for anything else (NaN, Infinity, too many
 * digits, an exponent outside int8), which the caller treats as "not representable". */
static int
parse_decimal_text(const char *s, Py_ssize_t len, Num *out)
{
    Py_ssize_t i = 0, mant_end;
    int negative = 0;
    long e = 0;
    Num n;
    if (i < len && s[i] == '-') {
        negative = 1;
        i++;
    }
    mant_end = i;
    while (mant_end < len && s[mant_end] != 'E' && s[mant_end] != 'e')
        mant_end++;
    if (!parse_plain(s + i, mant_end - i, &n))
        return 0;
    if (mant_end < len) {
        Py_ssize_t j = mant_end + 1;
        int eneg = 0, edigits = 0;
        if (j < len && (s[j] == '+' || s[j] == '-')) {
            eneg = s[j] == '-';
            j++;
        }
        for (; j < len; j++) {
            if (s[j] < '0' || s[j] > '9' || ++edigits > 4)
                return 0;
            e = e * 10 + (s[j] - '0');
        }
        if (edigits == 0)
            return 0;
        if (eneg)
            e = -e;
    }
    e += n.exp;
    if (e < -100 || e > 100)
        return 0;
    out->coef = n.coef;
    out->exp = (int)e;
    out->sig = n.sig;
    out->negative = negative;
    return 1;
}

/* The price's key (value x 10^18) if the price is representable: not negative, at
 * most 18 fractional digits, below 10^20. */
static int
price_key(const Num *n, i128 *key)
{
    int shift;
    if (n->negative && n->coef != 0)
        return 0;
    if (n->negative) /* "-0": equal to 0 but written differently; keep it simple */
        return 0;
    shift = SCALE_DIGITS + n->exp;
    if (shift < 0)
        return 0;
    if (n->coef != 0 && n->sig + shift > MAX_COEF_DIGITS)
        return 0;
    if (shift > MAX_COEF_DIGITS)
        return n->coef == 0 ? (*key = 0, 1) : 0;
    *key = (i128)(n->coef * POW10[shift]);
    return 1;
}

/* Decimal(text), calling the type's tp_new directly with a reused 1-tuple: the same
 * constructor Decimal(text) runs, without the generic call machinery (~30-40 ns of
 * ~150). The tuple is reused only while nothing else holds it. */
static PyObject *args1; /* (None,) or (text,) between calls; owned by the module */

static PyObject *
decimal_from_text(PyObject *text)
{
    PyObject *result;
    PyTypeObject *type = (PyTypeObject *)DecimalType;
    if (args1 == NULL || Py_REFCNT(args1) != 1) {
        Py_XDECREF(args1);
        args1 = PyTuple_Pack(1, Py_None);
        if (args1 == NULL)
            return NULL;
    }
    Py_SETREF(PyTuple_GET_ITEM(args1, 0), Py_NewRef(text));
    result = type->tp_new(type, args1, NULL);
    Py_SETREF(PyTuple_GET_ITEM(args1, 0), Py_NewRef(Py_None));
    return result;
}

/* Direct Decimal construction. Decimal(text) costs ~150 ns, most of it the text
 * itself and its parse; a shown book of 20 levels a side builds ~20 of them per frame,
 * which made the view the largest stage of the maintained book (RESULTS.md, issue #12).
 * CPython's C decimal object is a fixed struct (Modules/_decimal/_decimal.c: PyDecObject
 * = header, cached hash, an mpd_t and four inline 64-bit words; unchanged since 3.3),
 * so a positive finite number whose coefficient fits one word (< 10^19, the 64-bit
 * libmpdec radix) can be built by filling that struct exactly as its own constructor
 * does. That layout is private, so it is CHECKED at import (decimal_layout_check):
 * the fields of Decimals built by Decimal(text) must read back as expected, and
 * directly built ones must equal Decimal(text) in value, digits and exponent for a
 * set of samples. If anything differs (another CPython, the pure-Python decimal, a
 * 32-bit build) the direct path stays off and every Decimal is built from text. */
typedef struct {
    uint8_t flags;
    int64_t exp;
    int64_t digits;
    int64_t len;
    int64_t alloc;
    uint64_t *data;
} MpdLayout;

typedef struct {
    PyObject_HEAD
    Py_hash_t hash;
    MpdLayout dec;
    uint64_t data[4];
} DecLayout;

#define MPD_STATIC_FLAGS 48 /* MPD_STATIC | MPD_STATIC_DATA: positive, finite, inline */
#define ONE_WORD_LIMIT 10000000000000000000ULL /* 10^19 */

static int direct_decimals; /* 1 once decimal_layout_check passed */

static int
decimal_digit_count(uint64_t coef)
{
    int n = 1;
    while (coef >= 10) {
        coef /= 10;
        n++;
    }
    return n;
}

static PyObject *
decimal_direct(uint64_t coef, int exp)
{
    PyTypeObject *type = (PyTypeObject *)DecimalType;
    DecLayout *dec = (DecLayout *)type->tp_alloc(type, 0);
    if (dec == NULL)
        return NULL;
    dec->hash = -1;
    dec->dec.flags = MPD_STATIC_FLAGS;
    dec->dec.exp = exp;
    dec->dec.digits = decimal_digit_count(coef);
    dec->dec.len = 1;
    dec->dec.alloc = 4;
    dec->dec.data = dec->data;
    dec->data[0] = coef;
    return (PyObject *)dec;
}

static PyObject *make_decimal_text(u128 coef, int exp);

/* 1 if a Decimal built by Decimal(text) has the fields this file expects. */
static int
decimal_fields_are(PyObject *obj, uint64_t coef, int exp, int digits)
{
    DecLayout *dec = (DecLayout *)obj;
    return Py_TYPE(obj)->tp_basicsize == (Py_ssize_t)sizeof(DecLayout) &&
           dec->hash == -1 && dec->dec.flags == MPD_STATIC_FLAGS && dec->dec.exp == exp &&
           dec->dec.digits == digits && dec->dec.len == 1 && dec->dec.alloc == 4 &&
           dec->dec.data == dec->data && dec->data[0] == coef;
}

/* Turn the direct path on only if the layout reads back right and direct Decimals
 * equal Decimal(text) (value, str, as_tuple) for every sample. */
static int
decimal_layout_check(void)
{
    static const struct { uint64_t coef; int exp; } samples[] = {
        {12345, -2}, {0, -8}, {0, 0}, {1, 0}, {150, -2}, {5, -3}, {7, 3},
        {9999999999999999999ULL, -18}, {1234567890123456789ULL, 0}, {100000000, -8},
    };
    size_t n = sizeof(samples) / sizeof(samples[0]);
    direct_decimals = 0;
    if (sizeof(void *) != 8 || PyType_IS_GC((PyTypeObject *)DecimalType))
        return 0;
    for (size_t i = 0; i < n; i++) {
        PyObject *by_text, *direct, *t1 = NULL, *t2 = NULL, *s1 = NULL, *s2 = NULL;
        int same;
        by_text = make_decimal_text(samples[i].coef, samples[i].exp);
        if (by_text == NULL)
            return -1;
        if (!decimal_fields_are(by_text, samples[i].coef, samples[i].exp,
                                decimal_digit_count(samples[i].coef))) {
            Py_DECREF(by_text);
            return 0;
        }
        direct = decimal_direct(samples[i].coef, samples[i].exp);
        if (direct == NULL) {
            Py_DECREF(by_text);
            return -1;
        }
        same = PyObject_RichCompareBool(by_text, direct, Py_EQ);
        if (same == 1) {
            s1 = PyObject_Str(by_text);
            s2 = PyObject_Str(direct);
            t1 = PyObject_CallMethod(by_text, "as_tuple", NULL);
            t2 = PyObject_CallMethod(direct, "as_tuple", NULL);
            same = (s1 && s2 && t1 && t2) ? PyObject_RichCompareBool(s1, s2, Py_EQ) : -1;
            if (same == 1)
                same = PyObject_RichCompareBool(t1, t2, Py_EQ);
        }
        Py_XDECREF(s1);
        Py_XDECREF(s2);
        Py_XDECREF(t1);
        Py_XDECREF(t2);
        Py_DECREF(by_text);
        Py_DECREF(direct);
        if (same != 1)
            return same < 0 ? -1 : 0;
    }
    direct_decimals = 1;
    return 0;
}

/* Decimal of coef * 10^exp (coef >= 0): direct when checked and it fits one word. */
static PyObject *
make_decimal(u128 coef, int exp)
{
    if (direct_decimals && coef < ONE_WORD_LIMIT)
        return decimal_direct((uint64_t)coef, exp);
    return make_decimal_text(coef, exp);
}

/* Text of coef * 10^exp exactly as Decimal writes it back: "150" / "1.50" / "0.005" /
 * "1E+3". Decimal(text) then has exactly this coefficient and exponent. */
static PyObject *
make_decimal_text(u128 coef, int exp)
{
    char digits[48], buf[96];
    int nd = 0, pos = 0;
    PyObject *text, *result;
    while (coef > UINT64_MAX) {
        digits[nd++] = (char)('0' + (int)(coef % 10));
        coef /= 10;
    }
    {
        uint64_t small = (uint64_t)coef;
        do {
            digits[nd++] = (char)('0' + (int)(small % 10));
            small /= 10;
        } while (small);
    }
    if (exp >= 0) {
        while (nd)
            buf[pos++] = digits[--nd];
        if (exp > 0)
            pos += sprintf(buf + pos, "E+%d", exp);
    }
    else {
        int frac = -exp;
        int total = nd > frac ? nd : frac + 1; /* at least one integer digit */
        for (int k = total - 1; k >= 0; k--) {
            buf[pos++] = k < nd ? digits[k] : '0';
            if (k == frac)
                buf[pos++] = '.';
        }
    }
    text = PyUnicode_New(pos, 127); /* ASCII: no UTF-8 decoding needed */
    if (text == NULL)
        return NULL;
    memcpy(PyUnicode_1BYTE_DATA(text), buf, (size_t)pos);
    result = decimal_from_text(text);
    Py_DECREF(text);
    return result;
}

/* A Decimal object's number, via str(); 0 (no exception) if it cannot be read. */
static int
decimal_num(PyObject *obj, Num *out)
{
    PyObject *text;
    const char *s;
    Py_ssize_t len;
    int ok;
    if (Py_TYPE(obj) != (PyTypeObject *)DecimalType)
        return 0;
    text = PyObject_Str(obj);
    if (text == NULL)
        return -1;
    s = PyUnicode_AsUTF8AndSize(text, &len);
    if (s == NULL) {
        Py_DECREF(text);
        return -1;
    }
    ok = parse_decimal_text(s, len, out);
    Py_DECREF(text);
    return ok;
}

/* ------------------------------------------------------------------ packed levels */

/* One level as the book stores it: price key (unnegated), quantity coefficient, the
 * exponents both were written with. Quantity 0 (any exponent) means "remove". */
typedef struct {
    i128 key;
    u128 qty;
    int8_t pexp;
    int8_t qexp;
} PLevel;

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;
    PLevel *items;
} PackedObject;

static PyTypeObject Packed_Type;

static PyObject *
price_decimal(i128 key, int pexp)
{
    return make_decimal((u128)key / POW10[SCALE_DIGITS + pexp], pexp);
}

static PyObject *
level_tuple(const PLevel *lv)
{
    PyObject *p, *q, *t;
    p = price_decimal(lv->key, lv->pexp);
    if (p == NULL)
        return NULL;
    q = make_decimal(lv->qty, lv->qexp);
    if (q == NULL) {
        Py_DECREF(p);
        return NULL;
    }
    t = PyTuple_Pack(2, p, q);
    Py_DECREF(p);
    Py_DECREF(q);
    return t;
}

static void
Packed_dealloc(PackedObject *self)
{
    /* the items live in the object's own allocation (packed_new) */
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t
Packed_len(PackedObject *self)
{
    return self->n;
}

static PyObject *
Packed_item(PackedObject *self, Py_ssize_t i)
{
    if (i < 0 || i >= self->n) {
        PyErr_SetString(PyExc_IndexError, "PackedLevels index out of range");
        return NULL;
    }
    return level_tuple(&self->items[i]);
}

static PyObject *Packed_as_tuple(PackedObject *self, PyObject *Py_UNUSED(ignored));

static PyObject *
Packed_subscript(PackedObject *self, PyObject *index)
{
    PyObject *t, *r;
    if (PyIndex_Check(index)) {
        Py_ssize_t i = PyNumber_AsSsize_t(index, PyExc_IndexError);
        if (i == -1 && PyErr_Occurred())
            return NULL;
        if (i < 0)
            i += self->n;
        return Packed_item(self, i);
    }
    t = Packed_as_tuple(self, NULL);
    if (t == NULL)
        return NULL;
    r = PyObject_GetItem(t, index);
    Py_DECREF(t);
    return r;
}

static PyObject *
Packed_as_tuple(PackedObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *t = PyTuple_New(self->n);
    if (t == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < self->n; i++) {
        PyObject *lv = level_tuple(&self->items[i]);
        if (lv == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, lv);
    }
    return t;
}

/* a OP b == b SWAPPED_OP[OP] a, for Py_LT, Py_LE, Py_EQ, Py_NE, Py_GT, Py_GE */
static const int SWAPPED_OP[] = {Py_GT, Py_GE, Py_EQ, Py_NE, Py_LT, Py_LE};

static PyObject *
Packed_richcompare(PyObject *a, PyObject *b, int op)
{
    PyObject *ta, *tb, *r;
    if (Py_TYPE(a) != &Packed_Type) {
        PyObject *x = a;
        a = b;
        b = x;
        op = SWAPPED_OP[op];
    }
    if (!(Py_TYPE(b) == &Packed_Type || PyTuple_Check(b)))
        Py_RETURN_NOTIMPLEMENTED;
    ta = Packed_as_tuple((PackedObject *)a, NULL);
    if (ta == NULL)
        return NULL;
    if (Py_TYPE(b) == &Packed_Type)
        tb = Packed_as_tuple((PackedObject *)b, NULL);
    else
        tb = Py_NewRef(b);
    if (tb == NULL) {
        Py_DECREF(ta);
        return NULL;
    }
    r = PyObject_RichCompare(ta, tb, op);
    Py_DECREF(ta);
    Py_DECREF(tb);
    return r;
}

static Py_hash_t
Packed_hash(PackedObject *self)
{
    PyObject *t = Packed_as_tuple(self, NULL);
    Py_hash_t h;
    if (t == NULL)
        return -1;
    h = PyObject_Hash(t);
    Py_DECREF(t);
    return h;
}

static PyObject *
Packed_repr(PackedObject *self)
{
    PyObject *t = Packed_as_tuple(self, NULL), *r;
    if (t == NULL)
        return NULL;
    r = PyUnicode_FromFormat("PackedLevels(%R)", t);
    Py_DECREF(t);
    return r;
}

static PyObject *
Packed_reduce(PackedObject *self, PyObject *Py_UNUSED(ignored))
{
    /* Pickles as the plain tuple parse_levels would have returned. */
    PyObject *t = Packed_as_tuple(self, NULL);
    if (t == NULL)
        return NULL;
    return Py_BuildValue("(O(N))", (PyObject *)&PyTuple_Type, t);
}

static PySequenceMethods Packed_as_sequence = {
    .sq_length = (lenfunc)Packed_len,
    .sq_item = (ssizeargfunc)Packed_item,
};

static PyMappingMethods Packed_as_mapping = {
    .mp_length = (lenfunc)Packed_len,
    .mp_subscript = (binaryfunc)Packed_subscript,
};

static PyMethodDef Packed_methods[] = {
    {"as_tuple", (PyCFunction)Packed_as_tuple, METH_NOARGS,
     "The levels as parse_levels returns them: ((Decimal, Decimal), ...)."},
    {"__reduce__", (PyCFunction)Packed_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject Packed_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rxconnector.exchanges._cbook.PackedLevels",
    .tp_basicsize = sizeof(PackedObject),
    .tp_dealloc = (destructor)Packed_dealloc,
    .tp_repr = (reprfunc)Packed_repr,
    .tp_as_sequence = &Packed_as_sequence,
    .tp_as_mapping = &Packed_as_mapping,
    .tp_hash = (hashfunc)Packed_hash,
    .tp_richcompare = Packed_richcompare,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One side's levels parsed from the wire: a read-only sequence of "
              "(Decimal, Decimal) built on access; the compiled book reads it directly.",
    .tp_methods = Packed_methods,
};

static const char *
skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* One JSON string holding a plain number; returns the position after the closing
 * quote, or NULL if it is not in the fast grammar. One pass over the usual number (at
 * most 19 digits); longer ones go through parse_plain. */
static const char *
scan_number(const char *p, const char *end, Num *n)
{
    const char *start;
    uint64_t small = 0;
    int used = 0, sig = 0, frac = 0, int_digits = 0, in_frac = 0;
    if (p >= end || *p != '"')
        return NULL;
    start = ++p;
    for (; p < end; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (d < 10) {
            if (used == 19)
                goto long_number;
            if (small != 0 || d != 0)
                sig++;
            small = small * 10 + d;
            used++;
            if (in_frac)
                frac++;
            else
                int_digits++;
        }
        else if (*p == '.' && !in_frac && int_digits) {
            in_frac = 1;
        }
        else if (*p == '"') {
            if (int_digits == 0 || (in_frac && frac == 0) || frac > SCALE_DIGITS)
                return NULL;
            n->coef = small;
            n->exp = -frac;
            n->sig = sig;
            n->negative = 0;
            return p + 1;
        }
        else {
            return NULL;
        }
    }
    return NULL;
long_number:
    while (p < end && *p != '"')
        p++;
    if (p >= end || !parse_plain(start, p - start, n))
        return NULL;
    return p + 1;
}

/* 1: parsed into *out (new reference); 0: not in the fast grammar (no exception);
 * -1: exception (memory). */
/* A PackedLevels object holding a copy of items[0..n), in one allocation. */
static PackedObject *
packed_new(const PLevel *items, Py_ssize_t n)
{
    size_t head = (sizeof(PackedObject) + 15) & ~(size_t)15; /* items 16-byte aligned */
    PackedObject *obj = PyObject_Malloc(head + (size_t)n * sizeof(PLevel));
    if (obj == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    PyObject_Init((PyObject *)obj, &Packed_Type);
    obj->n = n;
    obj->items = (PLevel *)((char *)obj + head);
    if (n)
        memcpy(obj->items, items, (size_t)n * sizeof(PLevel));
    return obj;
}

/* 1: parsed into *out (new reference); 0: not in the fast grammar (no exception);
 * -1: exception (memory). Levels are parsed into a stack buffer (a heap one past 64
 * levels) and copied once into the object. */
static int
pack_fast(const char *p, Py_ssize_t len, PackedObject **out)
{
    const char *end = p + len;
    PLevel stack[64];
    PLevel *items = stack;
    Py_ssize_t n = 0, cap = 64;
    int result = 0;
    p = skip_ws(p, end);
    if (p >= end || *p != '[')
        return 0;
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']') {
        p++;
        goto done;
    }
    for (;;) {
        Num price, qty;
        i128 key;
        if (p >= end || *p != '[')
            goto finish;
        p = scan_number(skip_ws(p + 1, end), end, &price);
        if (p == NULL)
            goto finish;
        p = skip_ws(p, end);
        if (p >= end || *p != ',')
            goto finish;
        p = scan_number(skip_ws(p + 1, end), end, &qty);
        if (p == NULL)
            goto finish;
        p = skip_ws(p, end);
        if (p >= end || *p != ']' || !price_key(&price, &key))
            goto finish;
        if (n == cap) {
            PLevel *bigger = PyMem_Malloc((size_t)cap * 2 * sizeof(PLevel));
            if (bigger == NULL) {
                PyErr_NoMemory();
                result = -1;
                goto finish;
            }
            memcpy(bigger, items, (size_t)n * sizeof(PLevel));
            if (items != stack)
                PyMem_Free(items);
            items = bigger;
            cap *= 2;
        }
        items[n].key = key;
        items[n].qty = qty.coef;
        items[n].pexp = (int8_t)price.exp;
        items[n].qexp = (int8_t)qty.exp;
        n++;
        p = skip_ws(p + 1, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == ']') {
            p++;
            break;
        }
        goto finish;
    }
done:
    p = skip_ws(p, end);
    if (p != end)
        goto finish;
    *out = packed_new(items, n);
    result = *out == NULL ? -1 : 1;
finish:
    if (items != stack)
        PyMem_Free(items);
    return result;
}

static PyObject *
call_python_pack(PyObject *raw)
{
    PyObject *mod, *r;
    mod = PyImport_ImportModule("rxconnector.exchanges.wire_levels");
    if (mod == NULL)
        return NULL;
    r = PyObject_CallMethodOneArg(mod, str_pack_py, raw);
    Py_DECREF(mod);
    return r;
}

static PyObject *
cbook_pack_levels(PyObject *Py_UNUSED(module), PyObject *raw)
{
    Py_buffer view;
    PackedObject *packed = NULL;
    int ok;
    if (PyObject_GetBuffer(raw, &view, PyBUF_SIMPLE) < 0) {
        /* Not a buffer (a str, say): the Python path decides what that means. */
        PyErr_Clear();
        return call_python_pack(raw);
    }
    ok = pack_fast((const char *)view.buf, view.len, &packed);
    PyBuffer_Release(&view);
    if (ok < 0)
        return NULL;
    if (ok == 0)
        return call_python_pack(raw);
    return (PyObject *)packed;
}

/* ------------------------------------------------------------------ the book
 *
 * Layout: per side one C array of BLevel sorted by key ascending, best level LAST (as
 * in LocalBook's hot tier): bids keyed by price x 10^18, asks by its negation, so that
 * "better" is "greater" on both sides and the touch is at the end, where almost every
 * change lands (inserting there moves few slots). A level is located by a galloping
 * search from the end (1, 2, 4, ... slots back, then binary) over 128-bit integers.
 *
 * Per level: key, quantity coefficient, both exponents (64 bytes with the two cache
 * pointers; no Python object at all until the level is read). A read (top_bids,
 * best_bid, ...) builds the price Decimal, the quantity Decimal and the (price, qty)
 * tuple and caches the tuple and the price until the level changes; a quantity change
 * keeps the cached price when the price was written with the same exponent. Levels
 * applied as Decimal tuples keep those very tuples as their cache (LocalBook hands out
 * the parser's own tuples too). A whole-side iteration (bids(), asks()) uses the
 * caches but does not fill them, so dumping a deep book does not grow it.
 *
 * Fallback: a number the layout cannot hold exactly (negative, more than 18 fractional
 * digits, 10^20 or more, NaN, a non-Decimal, a level that is not a 2-tuple) makes the
 * book hand its levels and coverage boundaries to a pure-Python LocalBook (through
 * LocalBook._restore) BEFORE applying anything of that call, and delegate every later
 * call to it: correctness first, permanently.
 *
 * Reference counting: the book owns strong references to its cached Decimals and
 * tuples, its boundary Decimals and (after a switch) its LocalBook; it never keeps a
 * borrowed reference past a call. Garbage collection: the book holds only Decimals,
 * tuples of exact Decimals and a LocalBook built from such levels, none of which can
 * refer back to the book, so no cycle can run through it and it is not GC-tracked.
 */

typedef struct {
    i128 key;        /* price x 10^18, negated on the ask side */
    u128 qty;        /* quantity coefficient (never 0: zero removes) */
    PyObject *price; /* cached Decimal of the price, or NULL */
    PyObject *level; /* cached (price, quantity) tuple, or NULL */
    int8_t pexp;
    int8_t qexp;
} BLevel;

typedef struct {
    BLevel *lv;
    Py_ssize_t n;
    Py_ssize_t cap;
    int neg; /* 1 on the ask side */
} Side;

typedef struct {
    PyObject_HEAD
    Side side[2];      /* 0: bids, 1: asks */
    int bounded[2];    /* a truncated snapshot's coverage boundary exists */
    i128 bound[2];     /* ...as a key: updates below it are ignored */
    PyObject *edge[2]; /* bid_floor / ask_ceiling Decimal, or NULL */
    PyObject *py;      /* the LocalBook everything is delegated to, or NULL */
} CBookObject;

static PyTypeObject CBook_Type;

/* One incoming level, validated and converted; pobj/tobj are borrowed from the
 * caller's sequence (NULL for packed levels) and live as long as the call. */
typedef struct {
    i128 key;
    u128 qty;
    Py_ssize_t idx;
    PyObject *pobj;
    PyObject *tobj;
    int8_t pexp;
    int8_t qexp;
} Entry;

static void
level_release(BLevel *L)
{
    Py_CLEAR(L->price);
    Py_CLEAR(L->level);
}

static void
side_free(Side *s)
{
    for (Py_ssize_t i = 0; i < s->n; i++)
        level_release(&s->lv[i]);
    PyMem_Free(s->lv);
    s->lv = NULL;
    s->n = s->cap = 0;
}

static int
side_reserve(Side *s, Py_ssize_t need)
{
    BLevel *bigger;
    Py_ssize_t cap;
    if (need <= s->cap)
        return 0;
    /* grow by an eighth: a snapshot-sized side must not double on its first insert */
    cap = s->cap + s->cap / 8 + 16;
    if (cap < need)
        cap = need;
    bigger = PyMem_Realloc(s->lv, (size_t)cap * sizeof(BLevel));
    if (bigger == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    s->lv = bigger;
    s->cap = cap;
    return 0;
}

/* First index whose key is >= k, galloping from the best (last) level. */
static Py_ssize_t
side_search(const Side *s, i128 k)
{
    const BLevel *lv = s->lv;
    Py_ssize_t n = s->n, lo, hi, step = 1, j;
    if (n == 0 || lv[n - 1].key < k)
        return n;
    j = n - 1; /* lv[j].key >= k */
    for (;;) {
        Py_ssize_t jj = j - step;
        if (jj < 0) {
            lo = 0;
            hi = j;
            break;
        }
        if (lv[jj].key < k) {
            lo = jj + 1;
            hi = j;
            break;
        }
        j = jj;
        step <<= 1;
    }
    while (lo < hi) { /* lv[hi].key >= k */
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (lv[mid].key < k)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static PyObject *
side_price(const Side *s, const BLevel *L)
{
    return price_decimal(s->neg ? -L->key : L->key, L->pexp);
}

/* The level tuple at index i (new reference); cached when `cache`. */
static PyObject *
side_level(Side *s, Py_ssize_t i, int cache)
{
    BLevel *L = &s->lv[i];
    BLevel was = *L; /* the level as it was before any allocation below */
    PyObject *price, *qty, *t;
    if (L->level != NULL)
        return Py_NewRef(L->level);
    price = L->price != NULL ? Py_NewRef(L->price) : side_price(s, L);
    if (price == NULL)
        return NULL;
    qty = make_decimal(was.qty, was.qexp);
    if (qty == NULL) {
        Py_DECREF(price);
        return NULL;
    }
    t = PyTuple_Pack(2, price, qty);
    Py_DECREF(qty);
    /* Allocating a tuple may run the garbage collector, and with it any finalizer,
     * which could (absurdly, but legally) change this book: cache only into the very
     * level we read, found again by index and content. */
    if (t != NULL && cache && i < s->n) {
        L = &s->lv[i];
        if (L->key == was.key && L->qty == was.qty && L->pexp == was.pexp &&
            L->qexp == was.qexp && L->level == NULL) {
            if (L->price == NULL)
                L->price = Py_NewRef(price);
            L->level = Py_NewRef(t);
        }
    }
    Py_DECREF(price);
    return t;
}

static PyObject *
side_top(Side *s, Py_ssize_t n)
{
    PyObject *t;
    if (n > s->n)
        n = s->n;
    if (n < 0)
        n = 0;
    t = PyTuple_New(n);
    if (t == NULL)
        return NULL;
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *lv;
        if (s->n - 1 - j < 0) { /* the book shrank under a finalizer (see side_level) */
            PyObject *shorter = PyTuple_GetSlice(t, 0, j);
            Py_DECREF(t); /* (its unset slots are NULL, which tuple dealloc skips) */
            return shorter;
        }
        lv = side_level(s, s->n - 1 - j, 1);
        if (lv == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, j, lv);
    }
    return t;
}

/* Apply one absolute level (quantity 0 removes). pobj/tobj: the caller's price and
 * level tuple to cache (levels applied as Decimal tuples), or NULL (packed levels). */
static int
side_apply(Side *s, i128 key, u128 qty, int pexp, int qexp, PyObject *pobj, PyObject *tobj,
           int bounded, i128 bound)
{
    i128 k = s->neg ? -key : key;
    Py_ssize_t i;
    BLevel *L;
    if (bounded && k < bound)
        return 0; /* outside a truncated snapshot's coverage */
    i = side_search(s, k);
    if (i < s->n && s->lv[i].key == k) {
        L = &s->lv[i];
        if (qty == 0) {
            level_release(L);
            memmove(L, L + 1, (size_t)(s->n - i - 1) * sizeof(BLevel));
            s->n--;
            return 0;
        }
        Py_CLEAR(L->level);
        if (tobj != NULL) {
            Py_XSETREF(L->price, Py_NewRef(pobj));
            L->level = Py_NewRef(tobj);
        }
        else if (L->pexp != pexp) {
            Py_CLEAR(L->price); /* same price, other notation: "10.0" -> "10.00" */
        }
        L->pexp = (int8_t)pexp;
        L->qty = qty;
        L->qexp = (int8_t)qexp;
        return 0;
    }
    if (qty == 0)
        return 0; /* removing a level we never knew is normal */
    if (side_reserve(s, s->n + 1) < 0)
        return -1;
    L = &s->lv[i];
    memmove(L + 1, L, (size_t)(s->n - i) * sizeof(BLevel));
    s->n++;
    L->key = k;
    L->qty = qty;
    L->pexp = (int8_t)pexp;
    L->qexp = (int8_t)qexp;
    L->price = tobj != NULL ? Py_NewRef(pobj) : NULL;
    L->level = tobj != NULL ? Py_NewRef(tobj) : NULL;
    return 0;
}

/* Converts one side's levels. Returns 1 (converted), 0 (something the book cannot
 * hold exactly: switch to Python), -1 (exception). *fast receives the sequence that
 * holds the borrowed objects (a new reference, also what a switch delegates with). */
static int
convert_side(PyObject *obj, PyObject **fast, Entry **out, Py_ssize_t *count)
{
    Py_ssize_t n;
    Entry *entries;
    *out = NULL;
    *count = 0;
    if (Py_TYPE(obj) == &Packed_Type) {
        PackedObject *p = (PackedObject *)obj;
        *fast = Py_NewRef(obj);
        entries = PyMem_Malloc((size_t)(p->n ? p->n : 1) * sizeof(Entry));
        if (entries == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < p->n; i++) {
            entries[i].key = p->items[i].key;
            entries[i].qty = p->items[i].qty;
            entries[i].pexp = p->items[i].pexp;
            entries[i].qexp = p->items[i].qexp;
            entries[i].idx = i;
            entries[i].pobj = entries[i].tobj = NULL;
        }
        *out = entries;
        *count = p->n;
        return 1;
    }
    *fast = PySequence_Fast(obj, "levels must be an iterable of (price, quantity)");
    if (*fast == NULL)
        return -1;
    n = PySequence_Fast_GET_SIZE(*fast);
    entries = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(Entry));
    if (entries == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *out = entries;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PySequence_Fast_GET_ITEM(*fast, i);
        Num price, qty;
        int ok;
        if (!PyTuple_CheckExact(t) || PyTuple_GET_SIZE(t) != 2)
            return 0;
        ok = decimal_num(PyTuple_GET_ITEM(t, 0), &price);
        if (ok == 1)
            ok = decimal_num(PyTuple_GET_ITEM(t, 1), &qty);
        if (ok != 1)
            return ok;
        if (!price_key(&price, &entries[i].key))
            return 0;
        if (qty.coef != 0 && (qty.negative || qty.exp < -127 || qty.exp > 127))
            return 0;
        entries[i].qty = qty.coef;
        entries[i].pexp = (int8_t)price.exp;
        entries[i].qexp = (int8_t)(qty.coef != 0 ? qty.exp : 0);
        entries[i].idx = i;
        entries[i].pobj = PyTuple_GET_ITEM(t, 0);
        entries[i].tobj = t;
        *count = i + 1;
    }
    return 1;
}

/* Every level of one side, best first, as a list of tuples (for the handover). */
static PyObject *
side_list(Side *s)
{
    PyObject *list = PyList_New(s->n);
    if (list == NULL)
        return NULL;
    for (Py_ssize_t j = 0; j < PyList_GET_SIZE(list); j++) {
        PyObject *lv;
        if (s->n - 1 - j < 0) { /* shrank under a finalizer: hand over what is left */
            if (PyList_SetSlice(list, j, PyList_GET_SIZE(list), NULL) < 0) {
                Py_DECREF(list);
                return NULL;
            }
            break;
        }
        lv = side_level(s, s->n - 1 - j, 0);
        if (lv == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, j, lv);
    }
    return list;
}

static void
book_clear_state(CBookObject *self)
{
    for (int k = 0; k < 2; k++) {
        side_free(&self->side[k]);
        self->bounded[k] = 0;
        Py_CLEAR(self->edge[k]);
    }
}

/* Hand every level and boundary to a new LocalBook and delegate from now on. */
static int
switch_to_python(CBookObject *self)
{
    PyObject *mod, *cls, *bids = NULL, *asks = NULL, *py = NULL;
    mod = PyImport_ImportModule("rxconnector.exchanges.book");
    if (mod == NULL)
        return -1;
    cls = PyObject_GetAttr(mod, str_local_book);
    Py_DECREF(mod);
    if (cls == NULL)
        return -1;
    bids = side_list(&self->side[0]);
    if (bids != NULL)
        asks = side_list(&self->side[1]);
    if (asks != NULL)
        py = PyObject_CallMethodObjArgs(
            cls, str_restore, bids, asks, self->edge[0] ? self->edge[0] : Py_None,
            self->edge[1] ? self->edge[1] : Py_None, NULL);
    Py_DECREF(cls);
    Py_XDECREF(bids);
    Py_XDECREF(asks);
    if (py == NULL)
        return -1;
    book_clear_state(self);
    self->py = py;
    return 0;
}

/* ------------------------------------------------------------------ CBook methods */

/* Positional-or-keyword arguments of a METH_FASTCALL|METH_KEYWORDS method: names[0..npos)
 * may be positional, the rest keyword-only; the first nreq are required. */
static int
get_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
         const char *const *names, int nnames, int npos, int nreq, PyObject **out)
{
    for (int i = 0; i < nnames; i++)
        out[i] = NULL;
    if (nargs > npos) {
        PyErr_Format(PyExc_TypeError, "%s() takes %d positional arguments but %zd were given",
                     fname, npos, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        out[i] = args[i];
    if (kwnames != NULL) {
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(kwnames); k++) {
            PyObject *kw = PyTuple_GET_ITEM(kwnames, k);
            int found = -1;
            for (int i = 0; i < nnames; i++)
                if (PyUnicode_CompareWithASCIIString(kw, names[i]) == 0)
                    found = i;
            if (found < 0 || out[found] != NULL) {
                PyErr_Format(PyExc_TypeError, "%s() got an unexpected or repeated argument %R",
                             fname, kw);
                return -1;
            }
            out[found] = args[nargs + k];
        }
    }
    for (int i = 0; i < nreq; i++)
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname,
                         names[i]);
            return -1;
        }
    return 0;
}

static int
as_count(PyObject *obj, Py_ssize_t *out)
{
    *out = PyNumber_AsSsize_t(obj, NULL); /* clamps huge values */
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static PyObject *
CBook_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    CBookObject *self;
    if (PyTuple_GET_SIZE(args) != 0 || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0)) {
        PyErr_SetString(PyExc_TypeError, "CBook() takes no arguments");
        return NULL;
    }
    self = (CBookObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->side[1].neg = 1;
    return (PyObject *)self;
}

static void
CBook_dealloc(CBookObject *self)
{
    book_clear_state(self);
    Py_CLEAR(self->py);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
CBook_apply(CBookObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"bids", "asks"};
    PyObject *arg[2], *fast[2] = {NULL, NULL}, *result = NULL;
    PackedObject *packed[2] = {NULL, NULL};
    Entry *entries[2] = {NULL, NULL};
    Py_ssize_t count[2] = {0, 0};
    int ok = 1;
    if (nargs == 2 && kwnames == NULL) {
        arg[0] = args[0];
        arg[1] = args[1];
    }
    else if (get_args("apply", args, nargs, kwnames, names, 2, 2, 2, arg) < 0)
        return NULL;
    if (self->py != NULL)
        return PyObject_CallMethod(self->py, "apply", "OO", arg[0], arg[1]);
    for (int k = 0; k < 2 && ok == 1; k++) {
        int truth;
        if (Py_TYPE(arg[k]) == &Packed_Type) {
            packed[k] = (PackedObject *)arg[k]; /* borrowed: the caller holds it */
            continue;
        }
        truth = PyObject_IsTrue(arg[k]); /* LocalBook: `if bids:` */
        if (truth < 0) {
            ok = -1;
            break;
        }
        if (truth)
            ok = convert_side(arg[k], &fast[k], &entries[k], &count[k]);
    }
    if (ok == 1) {
        for (int k = 0; k < 2 && ok == 1; k++) {
            Side *s = &self->side[k];
            if (packed[k] != NULL) { /* straight from the wire: no conversion */
                const PLevel *p = packed[k]->items;
                for (Py_ssize_t i = 0; i < packed[k]->n && ok == 1; i++)
                    if (side_apply(s, p[i].key, p[i].qty, p[i].pexp, p[i].qexp, NULL, NULL,
                                   self->bounded[k], self->bound[k]) < 0)
                        ok = -1;
                continue;
            }
            for (Py_ssize_t i = 0; i < count[k] && ok == 1; i++) {
                const Entry *e = &entries[k][i];
                if (side_apply(s, e->key, e->qty, e->pexp, e->qexp, e->pobj, e->tobj,
                               self->bounded[k], self->bound[k]) < 0)
                    ok = -1;
            }
        }
        if (ok == 1)
            result = Py_NewRef(Py_None);
    }
    else if (ok == 0 && switch_to_python(self) == 0) { /* before anything was applied */
        result = PyObject_CallMethod(self->py, "apply", "OO", fast[0] ? fast[0] : arg[0],
                                     fast[1] ? fast[1] : arg[1]);
    }
    for (int k = 0; k < 2; k++) {
        PyMem_Free(entries[k]);
        Py_XDECREF(fast[k]);
    }
    return result;
}

static int
entry_cmp(const void *a, const void *b)
{
    const Entry *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

/* Fill a side from converted snapshot levels: last one per price wins, zero drops. */
static int
side_load(Side *s, Entry *e, Py_ssize_t n)
{
    Py_ssize_t m = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (s->neg)
            e[i].key = -e[i].key;
    qsort(e, (size_t)n, sizeof(Entry), entry_cmp);
    if (side_reserve(s, n + 1) < 0)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        BLevel *L;
        if (i + 1 < n && e[i + 1].key == e[i].key)
            continue; /* a later level of the same price decides */
        if (e[i].qty == 0)
            continue;
        L = &s->lv[m++];
        L->key = e[i].key;
        L->qty = e[i].qty;
        L->pexp = e[i].pexp;
        L->qexp = e[i].qexp;
        L->price = L->level = NULL; /* cold until read: no Python objects */
    }
    s->n = m;
    return 0;
}

static PyObject *
snapshot_python(CBookObject *self, PyObject *bids, PyObject *asks, PyObject *limit)
{
    PyObject *meth, *args, *kwargs = NULL, *r = NULL;
    meth = PyObject_GetAttrString(self->py, "load_snapshot");
    if (meth == NULL)
        return NULL;
    args = PyTuple_Pack(2, bids, asks);
    if (args != NULL && limit != NULL)
        kwargs = Py_BuildValue("{sO}", "limit", limit);
    if (args != NULL && (limit == NULL || kwargs != NULL))
        r = PyObject_Call(meth, args, kwargs);
    Py_DECREF(meth);
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    return r;
}

static int
set_edge(CBookObject *self, int k, PyObject *limit)
{
    Side *s = &self->side[k];
    int ge;
    PyObject *len;
    if (limit == NULL || limit == Py_None || s->n == 0)
        return 0;
    len = PyLong_FromSsize_t(s->n);
    if (len == NULL)
        return -1;
    ge = PyObject_RichCompareBool(len, limit, Py_GE); /* any number type, as in Python */
    Py_DECREF(len);
    if (ge <= 0 || s->n == 0) /* (a limit object's comparison could have cleared us) */
        return ge < 0 ? -1 : 0;
    self->bounded[k] = 1;
    self->bound[k] = s->lv[0].key;
    self->edge[k] = side_price(s, &s->lv[0]);
    return self->edge[k] == NULL ? -1 : 0;
}

static PyObject *
CBook_load_snapshot(CBookObject *self, PyObject *const *args, Py_ssize_t nargs,
                    PyObject *kwnames)
{
    static const char *const names[] = {"bids", "asks", "limit"};
    PyObject *arg[3], *fast[2] = {NULL, NULL}, *result = NULL;
    Entry *entries[2] = {NULL, NULL};
    Py_ssize_t count[2] = {0, 0};
    int ok = 1;
    if (get_args("load_snapshot", args, nargs, kwnames, names, 3, 2, 2, arg) < 0)
        return NULL;
    if (self->py != NULL)
        return snapshot_python(self, arg[0], arg[1], arg[2]);
    book_clear_state(self);
    for (int k = 0; k < 2 && ok == 1; k++)
        ok = convert_side(arg[k], &fast[k], &entries[k], &count[k]);
    if (ok == 1) {
        for (int k = 0; k < 2 && ok == 1; k++)
            if (side_load(&self->side[k], entries[k], count[k]) < 0 ||
                set_edge(self, k, arg[2]) < 0)
                ok = -1;
        if (ok == 1)
            result = Py_NewRef(Py_None);
        else
            book_clear_state(self);
    }
    else if (ok == 0 && switch_to_python(self) == 0) {
        result = snapshot_python(self, fast[0] ? fast[0] : arg[0], fast[1] ? fast[1] : arg[1],
                                 arg[2]);
    }
    for (int k = 0; k < 2; k++) {
        PyMem_Free(entries[k]);
        Py_XDECREF(fast[k]);
    }
    return result;
}

#define DELEGATE_NOARGS(name)                                                          \
    if (self->py != NULL)                                                              \
        return PyObject_CallMethod(self->py, name, NULL);

#define DELEGATE_ONEARG(name)                                                          \
    if (self->py != NULL)                                                              \
        return PyObject_CallMethod(self->py, name, "O", arg);

static PyObject *
CBook_clear(CBookObject *self, PyObject *Py_UNUSED(ignored))
{
    DELEGATE_NOARGS("clear")
    book_clear_state(self);
    Py_RETURN_NONE;
}

static void
side_trim(Side *s, Py_ssize_t max_levels)
{
    Py_ssize_t excess = max_levels < 0 ? s->n : s->n - max_levels;
    if (excess <= 0)
        return;
    for (Py_ssize_t i = 0; i < excess; i++)
        level_release(&s->lv[i]);
    memmove(s->lv, s->lv + excess, (size_t)(s->n - excess) * sizeof(BLevel));
    s->n -= excess;
}

static PyObject *
CBook_trim(CBookObject *self, PyObject *arg)
{
    Py_ssize_t m;
    DELEGATE_ONEARG("trim")
    if (as_count(arg, &m) < 0)
        return NULL;
    side_trim(&self->side[0], m);
    side_trim(&self->side[1], m);
    Py_RETURN_NONE;
}

static PyObject *
book_top(CBookObject *self, int k, PyObject *arg)
{
    Py_ssize_t n;
    if (as_count(arg, &n) < 0)
        return NULL;
    return side_top(&self->side[k], n);
}

static PyObject *
CBook_top_bids(CBookObject *self, PyObject *arg)
{
    DELEGATE_ONEARG("top_bids")
    return book_top(self, 0, arg);
}

static PyObject *
CBook_top_asks(CBookObject *self, PyObject *arg)
{
    DELEGATE_ONEARG("top_asks")
    return book_top(self, 1, arg);
}

static int
book_covers(CBookObject *self, Py_ssize_t n)
{
    for (int k = 0; k < 2; k++)
        if (self->bounded[k] && self->side[k].n < n)
            return 0;
    return 1;
}

static int
book_crossed(CBookObject *self)
{
    Side *b = &self->side[0], *a = &self->side[1];
    return b->n && a->n && b->lv[b->n - 1].key >= -a->lv[a->n - 1].key;
}

static PyObject *
CBook_covers(CBookObject *self, PyObject *arg)
{
    Py_ssize_t n;
    DELEGATE_ONEARG("covers")
    if (as_count(arg, &n) < 0)
        return NULL;
    return PyBool_FromLong(book_covers(self, n));
}

static PyObject *
CBook_is_consistent(CBookObject *self, PyObject *arg)
{
    Py_ssize_t n;
    DELEGATE_ONEARG("is_consistent")
    if (as_count(arg, &n) < 0)
        return NULL;
    return PyBool_FromLong(!book_crossed(self) && book_covers(self, n));
}

/* ---- bids() / asks(): an iterator over one side, best first */

typedef struct {
    PyObject_HEAD
    CBookObject *book; /* strong */
    int k;
    Py_ssize_t pos; /* levels handed out so far */
} LevelIterObject;

static PyTypeObject LevelIter_Type;

static PyObject *
book_iter(CBookObject *self, int k)
{
    LevelIterObject *it = PyObject_New(LevelIterObject, &LevelIter_Type);
    if (it == NULL)
        return NULL;
    it->book = (CBookObject *)Py_NewRef(self);
    it->k = k;
    it->pos = 0;
    return (PyObject *)it;
}

static void
LevelIter_dealloc(LevelIterObject *it)
{
    Py_DECREF(it->book);
    PyObject_Free(it);
}

static PyObject *
LevelIter_next(LevelIterObject *it)
{
    Side *s = &it->book->side[it->k];
    /* a book that switched to Python mid-iteration has no C levels left: stop */
    if (it->pos >= s->n)
        return NULL;
    return side_level(s, s->n - 1 - it->pos++, 0);
}

static PyTypeObject LevelIter_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rxconnector.exchanges._cbook.LevelIterator",
    .tp_basicsize = sizeof(LevelIterObject),
    .tp_dealloc = (destructor)LevelIter_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)LevelIter_next,
};

static PyObject *
CBook_bids(CBookObject *self, PyObject *Py_UNUSED(ignored))
{
    DELEGATE_NOARGS("bids")
    return book_iter(self, 0);
}

static PyObject *
CBook_asks(CBookObject *self, PyObject *Py_UNUSED(ignored))
{
    DELEGATE_NOARGS("asks")
    return book_iter(self, 1);
}

static PyObject *
CBook_sizeof(CBookObject *self, PyObject *Py_UNUSED(ignored))
{
    size_t size = sizeof(CBookObject);
    for (int k = 0; k < 2; k++)
        size += (size_t)self->side[k].cap * sizeof(BLevel);
    return PyLong_FromSize_t(size);
}

/* ---- copy and pickle: (rxconnector.exchanges._cbook._restore, (bids, asks, floor,
 * ceiling)), the levels as Decimal tuples best first, as LocalBook._restore takes them */

static PyObject *
side_levels_list(CBookObject *self, int k)
{
    PyObject *it, *list;
    if (self->py == NULL)
        return side_list(&self->side[k]);
    it = PyObject_CallMethod(self->py, k ? "asks" : "bids", NULL);
    if (it == NULL)
        return NULL;
    list = PySequence_List(it);
    Py_DECREF(it);
    return list;
}

static PyObject *
CBook_reduce(CBookObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *mod, *restore, *bids = NULL, *asks = NULL, *edge[2] = {NULL, NULL}, *r = NULL;
    mod = PyImport_ImportModule("rxconnector.exchanges._cbook");
    if (mod == NULL)
        return NULL;
    restore = PyObject_GetAttr(mod, str_restore);
    Py_DECREF(mod);
    if (restore == NULL)
        return NULL;
    for (int k = 0; k < 2; k++) {
        if (self->py != NULL)
            edge[k] = PyObject_GetAttrString(self->py, k ? "ask_ceiling" : "bid_floor");
        else
            edge[k] = Py_NewRef(self->edge[k] ? self->edge[k] : Py_None);
        if (edge[k] == NULL)
            goto done;
    }
    bids = side_levels_list(self, 0);
    if (bids != NULL)
        asks = side_levels_list(self, 1);
    if (asks != NULL)
        r = Py_BuildValue("(O(OOOO))", restore, bids, asks, edge[0], edge[1]);
done:
    Py_DECREF(restore);
    Py_XDECREF(bids);
    Py_XDECREF(asks);
    Py_XDECREF(edge[0]);
    Py_XDECREF(edge[1]);
    return r;
}

/* A boundary Decimal as this book's key; 0 if the book cannot hold it exactly. */
static int
edge_key(PyObject *edge, int neg, i128 *bound)
{
    Num n;
    i128 key;
    int ok = decimal_num(edge, &n);
    if (ok != 1)
        return ok;
    if (!price_key(&n, &key))
        return 0;
    *bound = neg ? -key : key;
    return 1;
}

static PyObject *
cbook_restore(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *bids, *asks, *edge[2], *r, *mod, *cls;
    CBookObject *book;
    int ok = 1;
    if (!PyArg_ParseTuple(args, "OOOO:_restore", &bids, &asks, &edge[0], &edge[1]))
        return NULL;
    book = (CBookObject *)CBook_Type.tp_alloc(&CBook_Type, 0);
    if (book == NULL)
        return NULL;
    book->side[1].neg = 1;
    r = PyObject_CallMethod((PyObject *)book, "load_snapshot", "OO", bids, asks);
    if (r == NULL) {
        Py_DECREF(book);
        return NULL;
    }
    Py_DECREF(r);
    for (int k = 0; k < 2 && ok == 1 && book->py == NULL; k++) {
        if (edge[k] == Py_None)
            continue;
        ok = edge_key(edge[k], k, &book->bound[k]);
        if (ok == 1) {
            book->bounded[k] = 1;
            book->edge[k] = Py_NewRef(edge[k]);
        }
    }
    if (ok == 1 && book->py == NULL)
        return (PyObject *)book;
    if (ok < 0) {
        Py_DECREF(book);
        return NULL;
    }
    /* a level or a boundary the layout cannot hold: the LocalBook takes all of it */
    mod = PyImport_ImportModule("rxconnector.exchanges.book");
    cls = mod ? PyObject_GetAttr(mod, str_local_book) : NULL;
    Py_XDECREF(mod);
    r = cls ? PyObject_CallMethodObjArgs(cls, str_restore, bids, asks, edge[0], edge[1], NULL)
            : NULL;
    Py_XDECREF(cls);
    if (r == NULL) {
        Py_DECREF(book);
        return NULL;
    }
    book_clear_state(book);
    Py_XSETREF(book->py, r);
    return (PyObject *)book;
}

/* ---- properties */

#define DELEGATE_GET(name)                                                             \
    if (self->py != NULL)                                                              \
        return PyObject_GetAttrString(self->py, name);

static PyObject *
book_best(CBookObject *self, int k)
{
    Side *s = &self->side[k];
    if (s->n == 0)
        Py_RETURN_NONE;
    return side_level(s, s->n - 1, 1);
}

static PyObject *
CBook_get_best_bid(CBookObject *self, void *Py_UNUSED(c))
{
    DELEGATE_GET("best_bid")
    return book_best(self, 0);
}

static PyObject *
CBook_get_best_ask(CBookObject *self, void *Py_UNUSED(c))
{
    DELEGATE_GET("best_ask")
    return book_best(self, 1);
}

static PyObject *
CBook_get_bid_count(CBookObject *self, void *Py_UNUSED(c))
{
    DELEGATE_GET("bid_count")
    return PyLong_FromSsize_t(self->side[0].n);
}

static PyObject *
CBook_get_ask_count(CBookObject *self, void *Py_UNUSED(c))
{
    DELEGATE_GET("ask_count")
    return PyLong_FromSsize_t(self->side[1].n);
}

static PyObject *
CBook_get_is_crossed(CBookObject *self, void *Py_UNUSED(c))
{
    DELEGATE_GET("is_crossed")
    return PyBool_FromLong(book_crossed(self));
}

static PyObject *
CBook_get_bid_floor(CBookObject *self, void *Py_UNUSED(c))
{
    DELEGATE_GET("bid_floor")
    return Py_NewRef(self->edge[0] ? self->edge[0] : Py_None);
}

static PyObject *
CBook_get_ask_ceiling(CBookObject *self, void *Py_UNUSED(c))
{
    DELEGATE_GET("ask_ceiling")
    return Py_NewRef(self->edge[1] ? self->edge[1] : Py_None);
}

static PyObject *
CBook_get_python_book(CBookObject *self, void *Py_UNUSED(c))
{
    return Py_NewRef(self->py ? self->py : Py_None);
}

static Py_ssize_t
CBook_len(CBookObject *self)
{
    if (self->py != NULL)
        return PyObject_Size(self->py);
    return self->side[0].n + self->side[1].n;
}

static PyObject *
CBook_repr(CBookObject *self)
{
    PyObject *best[2] = {NULL, NULL}, *r = NULL;
    if (self->py != NULL)
        return PyObject_Repr(self->py);
    for (int k = 0; k < 2; k++) {
        Side *s = &self->side[k];
        best[k] = s->n ? side_price(s, &s->lv[s->n - 1]) : Py_NewRef(Py_None);
        if (best[k] == NULL)
            goto done;
    }
    r = PyUnicode_FromFormat("<LocalBook (compiled) bids=%zd asks=%zd best=%S/%S>",
                             self->side[0].n, self->side[1].n, best[0], best[1]);
done:
    Py_XDECREF(best[0]);
    Py_XDECREF(best[1]);
    return r;
}

static PyMethodDef CBook_methods[] = {
    {"clear", (PyCFunction)CBook_clear, METH_NOARGS,
     "Forget every level and every coverage boundary."},
    {"load_snapshot", (PyCFunction)(void (*)(void))CBook_load_snapshot,
     METH_FASTCALL | METH_KEYWORDS,
     "Replace the whole book with a snapshot (LocalBook.load_snapshot's rules)."},
    {"apply", (PyCFunction)(void (*)(void))CBook_apply, METH_FASTCALL | METH_KEYWORDS,
     "Apply absolute level updates (quantity 0 removes): Decimal tuples or PackedLevels."},
    {"trim", (PyCFunction)CBook_trim, METH_O, "Keep only the best max_levels per side."},
    {"top_bids", (PyCFunction)CBook_top_bids, METH_O, "The best n bids, highest first."},
    {"top_asks", (PyCFunction)CBook_top_asks, METH_O, "The best n asks, lowest first."},
    {"bids", (PyCFunction)CBook_bids, METH_NOARGS, "Every bid, best first."},
    {"asks", (PyCFunction)CBook_asks, METH_NOARGS, "Every ask, best first."},
    {"covers", (PyCFunction)CBook_covers, METH_O,
     "Whether the known part of the book holds the true top n of both sides."},
    {"is_consistent", (PyCFunction)CBook_is_consistent, METH_O,
     "Not crossed and covers(n)."},
    {"__sizeof__", (PyCFunction)CBook_sizeof, METH_NOARGS, NULL},
    {"__reduce__", (PyCFunction)CBook_reduce, METH_NOARGS,
     "Copies and pickles hold the levels and coverage boundaries."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef CBook_getset[] = {
    {"best_bid", (getter)CBook_get_best_bid, NULL, NULL, NULL},
    {"best_ask", (getter)CBook_get_best_ask, NULL, NULL, NULL},
    {"bid_count", (getter)CBook_get_bid_count, NULL, NULL, NULL},
    {"ask_count", (getter)CBook_get_ask_count, NULL, NULL, NULL},
    {"is_crossed", (getter)CBook_get_is_crossed, NULL,
     "True if the best bid is at or above the best ask: a corrupted book.", NULL},
    {"bid_floor", (getter)CBook_get_bid_floor, NULL,
     "Lowest bid price the book knows about (None: the whole side is known).", NULL},
    {"ask_ceiling", (getter)CBook_get_ask_ceiling, NULL,
     "Highest ask price the book knows about (None: the whole side is known).", NULL},
    {"python_book", (getter)CBook_get_python_book, NULL,
     "The LocalBook this book switched to (a number it could not hold), or None.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods CBook_as_sequence = {
    .sq_length = (lenfunc)CBook_len,
};

static PyTypeObject CBook_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rxconnector.exchanges._cbook.CBook",
    .tp_basicsize = sizeof(CBookObject),
    .tp_dealloc = (destructor)CBook_dealloc,
    .tp_repr = (reprfunc)CBook_repr,
    .tp_as_sequence = &CBook_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT, /* not GC-tracked: no cycle can pass through it */
    .tp_doc = "LocalBook's interface and semantics over scaled integers (see _cbook.c).",
    .tp_methods = CBook_methods,
    .tp_getset = CBook_getset,
    .tp_new = CBook_new,
};

/* ------------------------------------------------------------------ module */

static PyMethodDef cbook_methods[] = {
    {"_restore", (PyCFunction)cbook_restore, METH_VARARGS,
     "A CBook holding these levels and boundaries (what CBook.__reduce__ returns)."},
    {"pack_levels", (PyCFunction)cbook_pack_levels, METH_O,
     "JSON text of one side's [[price, qty], ...] -> PackedLevels (or, when the fast "
     "grammar does not accept it, whatever the pure-Python pack_levels_py returns or "
     "raises)."},
    {NULL, NULL, 0, NULL},
};

static int
cbook_exec(PyObject *module)
{
    PyObject *decimal_mod;
    POW10[0] = 1;
    for (int i = 1; i <= MAX_COEF_DIGITS; i++)
        POW10[i] = POW10[i - 1] * 10;
    decimal_mod = PyImport_ImportModule("decimal");
    if (decimal_mod == NULL)
        return -1;
    DecimalType = PyObject_GetAttrString(decimal_mod, "Decimal");
    Py_DECREF(decimal_mod);
    if (DecimalType == NULL)
        return -1;
    if (decimal_layout_check() < 0)
        return -1;
    str_pack_py = PyUnicode_InternFromString("pack_levels_py");
    str_local_book = PyUnicode_InternFromString("LocalBook");
    str_restore = PyUnicode_InternFromString("_restore");
    if (str_pack_py == NULL || str_local_book == NULL || str_restore == NULL)
        return -1;
    if (PyType_Ready(&Packed_Type) < 0)
        return -1;
    if (PyType_Ready(&CBook_Type) < 0 || PyType_Ready(&LevelIter_Type) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "PackedLevels", (PyObject *)&Packed_Type) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "CBook", (PyObject *)&CBook_Type) < 0)
        return -1;
    /* 1 when Decimals are built directly (the layout check passed), 0: from text */
    if (PyModule_AddIntConstant(module, "DIRECT_DECIMALS", direct_decimals) < 0)
        return -1;
    return 0;
}

static struct PyModuleDef cbook_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "rxconnector.exchanges._cbook",
    .m_doc = "Compiled order-book core: pack_levels and CBook (see _cbook.c's header).",
    .m_size = -1,
    .m_methods = cbook_methods,
};

PyMODINIT_FUNC
PyInit__cbook(void)
{
    PyObject *module = PyModule_Create(&cbook_module);
    if (module == NULL)
        return NULL;
    if (cbook_exec(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
