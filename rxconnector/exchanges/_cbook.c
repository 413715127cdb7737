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
#define MAX_PRICE_INT_DIGITS 20 /* prices below 10^20: key < 10^38 */

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
    int negative;
} Num;

/* Strict wire grammar: digits ['.' digits], nothing else. At most 18 fractional
 * digits and 38 significant digits, so that the parse_levels finite/exponent rule
 * (|adjusted| <= 50) holds trivially and every value fits the key range checks below.
 * Returns 1 on success, 0 when the text is not in the fast grammar. */
static int
parse_plain(const char *s, Py_ssize_t len, Num *out)
{
    Py_ssize_t i = 0;
    u128 coef = 0;
    int sig = 0, frac = 0, int_digits = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        int d = s[i] - '0';
        if (sig || d) {
            if (++sig > MAX_COEF_DIGITS)
                return 0;
        }
        coef = coef * 10 + (u128)d;
        int_digits++;
        i++;
    }
    if (int_digits == 0)
        return 0;
    if (i < len) {
        if (s[i] != '.')
            return 0;
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            int d = s[i] - '0';
            if (sig || d) {
                if (++sig > MAX_COEF_DIGITS)
                    return 0;
            }
            coef = coef * 10 + (u128)d;
            frac++;
            i++;
        }
        if (frac == 0 || i != len || frac > SCALE_DIGITS)
            return 0;
    }
    out->coef = coef;
    out->exp = -frac;
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
    out->negative = negative;
    return 1;
}

static int
digit_count(u128 v)
{
    int d = 1;
    while (d <= MAX_COEF_DIGITS && v >= POW10[d])
        d++;
    return d;
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
    if (n->coef != 0 && digit_count(n->coef) + shift > MAX_COEF_DIGITS)
        return 0;
    if (shift > MAX_COEF_DIGITS)
        return n->coef == 0 ? (*key = 0, 1) : 0;
    *key = (i128)(n->coef * POW10[shift]);
    return 1;
}

/* Text of coef * 10^exp exactly as Decimal writes it back: "150" / "1.50" / "0.005" /
 * "1E+3". Decimal(text) then has exactly this coefficient and exponent. */
static PyObject *
make_decimal(u128 coef, int exp)
{
    char digits[48], buf[96];
    int nd = 0, pos = 0;
    PyObject *text, *result;
    do {
        digits[nd++] = (char)('0' + (int)(coef % 10));
        coef /= 10;
    } while (coef);
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
    text = PyUnicode_FromStringAndSize(buf, pos);
    if (text == NULL)
        return NULL;
    result = PyObject_CallOneArg(DecimalType, text);
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
    PyMem_Free(self->items);
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

static PyObject *
Packed_richcompare(PyObject *a, PyObject *b, int op)
{
    PyObject *ta, *tb, *r;
    if (Py_TYPE(a) != &Packed_Type) {
        PyObject *x = a;
        a = b;
        b = x;
        op = _Py_SwappedOp[op];
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
 * quote, or NULL if it is not in the fast grammar. */
static const char *
scan_number(const char *p, const char *end, Num *n)
{
    const char *start;
    if (p >= end || *p != '"')
        return NULL;
    start = ++p;
    while (p < end && *p != '"')
        p++;
    if (p >= end || !parse_plain(start, p - start, n))
        return NULL;
    return p + 1;
}

/* 1: parsed into *out (new reference); 0: not in the fast grammar (no exception);
 * -1: exception (memory). */
static int
pack_fast(const char *p, Py_ssize_t len, PackedObject **out)
{
    const char *end = p + len;
    Py_ssize_t n = 0, cap = 16;
    PLevel *items = NULL;
    PackedObject *obj;
    p = skip_ws(p, end);
    if (p >= end || *p != '[')
        return 0;
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']') {
        p++;
        goto done;
    }
    items = PyMem_Malloc(cap * sizeof(PLevel));
    if (items == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (;;) {
        Num price, qty;
        i128 key;
        if (p >= end || *p != '[')
            goto decline;
        p = scan_number(skip_ws(p + 1, end), end, &price);
        if (p == NULL)
            goto decline;
        p = skip_ws(p, end);
        if (p >= end || *p != ',')
            goto decline;
        p = scan_number(skip_ws(p + 1, end), end, &qty);
        if (p == NULL)
            goto decline;
        p = skip_ws(p, end);
        if (p >= end || *p != ']')
            goto decline;
        if (!price_key(&price, &key))
            goto decline;
        if (n == cap) {
            PLevel *bigger;
            cap *= 2;
            bigger = PyMem_Realloc(items, cap * sizeof(PLevel));
            if (bigger == NULL) {
                PyMem_Free(items);
                PyErr_NoMemory();
                return -1;
            }
            items = bigger;
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
        goto decline;
    }
done:
    p = skip_ws(p, end);
    if (p != end)
        goto decline;
    obj = PyObject_New(PackedObject, &Packed_Type);
    if (obj == NULL) {
        PyMem_Free(items);
        return -1;
    }
    obj->n = n;
    obj->items = items;
    *out = obj;
    return 1;
decline:
    PyMem_Free(items);
    return 0;
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

/* ------------------------------------------------------------------ module */

static PyMethodDef cbook_methods[] = {
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
    str_pack_py = PyUnicode_InternFromString("pack_levels_py");
    str_local_book = PyUnicode_InternFromString("LocalBook");
    str_restore = PyUnicode_InternFromString("_restore");
    if (str_pack_py == NULL || str_local_book == NULL || str_restore == NULL)
        return -1;
    if (PyType_Ready(&Packed_Type) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "PackedLevels", (PyObject *)&Packed_Type) < 0)
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
