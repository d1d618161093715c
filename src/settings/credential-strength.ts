/**
 * Credential strength for password keys: at least 12 characters, not a well-known password,
 * not the user name. The list holds common passwords of 12 or more characters (shorter ones
 * already fail on length).
 */
const MIN_LENGTH = 12;
const MIN_DISTINCT = 5;

const COMMON = new Set([
  'password1234',
  'password12345',
  'password123456',
  'password123!',
  'passw0rd1234',
  'p@ssw0rd1234',
  'p@ssword1234',
  'qwertyuiop12',
  'qwertyuiop123',
  'qwertyuiopas',
  'qwertyuiop[]',
  '1q2w3e4r5t6y',
  '1qaz2wsx3edc',
  'q1w2e3r4t5y6',
  'zaq12wsxcde3',
  'zaq1zaq1zaq1',
  'asdfghjkl123',
  'qazwsxedcrfv',
  '123456789012',
  '1234567890123',
  '12345678910',
  '123456789abc',
  '123456789000',
  '0123456789ab',
  'abcdefghijkl',
  'abcd12345678',
  'abc123456789',
  'iloveyou1234',
  'welcome12345',
  'welcome123456',
  'letmein12345',
  'changeme1234',
  'changemenow!',
  'administrator',
  'administrator1',
  'admin1234567',
  'admin123456789',
  'adminadmin12',
  'rootroot1234',
  'superuser123',
  'trustno1trustno1',
  'football1234',
  'baseball1234',
  'sunshine1234',
  'princess1234',
  'dragon123456',
  'monkey123456',
  'master123456',
  'shadow123456',
  'michael12345',
  'superman1234',
  'starwars1234',
  'whatever1234',
  'computer1234',
  'internet1234',
  'samsung12345',
  'minecraft123',
  'pokemon12345',
  'chocolate123',
  'password',
  'passwordpassword',
  'websoft9websoft9',
  'websoft91234',
  'gitea1234567',
  'portainer123',
  'portainer1234',
  'nginxproxymanager',
  'changeme',
]);

const SEQUENCES = ['0123456789', 'abcdefghijklmnopqrstuvwxyz', 'qwertyuiop', 'asdfghjkl', 'zxcvbnm'];

function isRunOfSequence(lower: string): boolean {
  return SEQUENCES.some((sequence) => {
    const doubled = sequence + sequence;
    const reversed = [...doubled].reverse().join('');
    return doubled.includes(lower) || reversed.includes(lower);
  });
}

export interface StrengthInput {
  password: string;
  userName?: string;
}

/** Why the password is too weak, or undefined when it is acceptable. */
export function weakPasswordReason({ password, userName }: StrengthInput): string | undefined {
  if ([...password].length < MIN_LENGTH) return `must be at least ${MIN_LENGTH} characters long`;
  const lower = password.toLowerCase();
  if (COMMON.has(lower)) return 'is a commonly used password';
  if (new Set(lower).size < MIN_DISTINCT) return `must use at least ${MIN_DISTINCT} different characters`;
  if (isRunOfSequence(lower)) return 'is a keyboard or alphabet sequence';
  if (userName && lower === userName.toLowerCase()) return 'must not be the user name';
  return undefined;
}
