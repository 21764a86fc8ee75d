use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

/// Manages a collection of threads.
///
/// A new thread is created every time all the existing threads are full.
/// Any idle thread will automatically die after a few seconds.
pub struct TaskPool {
    sharing: Arc<Sharing>,
    // latency patch: set while threads cannot be started, so that a connection flood logs
    // the shortage once rather than once per connection.
    starved: AtomicBool,
}

struct Sharing {
    // list of the tasks to be done by worker threads
    todo: Mutex<VecDeque<Box<dyn FnMut() + Send>>>,

    // condvar that will be notified whenever a task is added to `todo`
    condvar: Condvar,

    // number of total worker threads running
    active_tasks: AtomicUsize,

    // number of idle worker threads
    waiting_tasks: AtomicUsize,
}

/// Minimum number of active threads.
static MIN_THREADS: usize = 4;

struct Registration<'a> {
    nb: &'a AtomicUsize,
}

impl<'a> Registration<'a> {
    fn new(nb: &'a AtomicUsize) -> Registration<'a> {
        nb.fetch_add(1, Ordering::Release);
        Registration { nb }
    }
}

impl<'a> Drop for Registration<'a> {
    fn drop(&mut self) {
        self.nb.fetch_sub(1, Ordering::Release);
    }
}

impl TaskPool {
    pub fn new() -> TaskPool {
        let pool = TaskPool {
            sharing: Arc::new(Sharing {
                todo: Mutex::new(VecDeque::new()),
                condvar: Condvar::new(),
                active_tasks: AtomicUsize::new(0),
                waiting_tasks: AtomicUsize::new(0),
            }),
            starved: AtomicBool::new(false),
        };

        for _ in 0..MIN_THREADS {
            pool.add_thread();
        }

        pool
    }

    /// Executes a function in a thread.
    /// If no thread is available, spawns a new one.
    pub fn spawn(&self, code: Box<dyn FnMut() + Send>) {
        let mut queue = self.sharing.todo.lock().unwrap();

        // latency patch: a waiting thread that was notified but has not yet taken its task
        // still counts as waiting, so compare the waiting threads with the queued tasks.
        // Upstream compared with zero: a burst of connections then left tasks queued
        // behind threads held by keep-alive connections, and those clients hung.
        let all_busy = self.sharing.waiting_tasks.load(Ordering::Acquire) <= queue.len();
        // latency patch: the task is queued before a thread is started for it, so that it
        // waits for a busy thread when none can be started. Upstream handed it to
        // `thread::spawn`, whose panic (at TasksMax, RLIMIT_NPROC) killed the accept loop.
        queue.push_back(code);
        if all_busy {
            self.add_thread();
        } else {
            self.sharing.condvar.notify_one();
        }
    }

    fn add_thread(&self) {
        let sharing = self.sharing.clone();

        let started = thread::Builder::new().spawn(move || {
            let sharing = sharing;
            let _active_guard = Registration::new(&sharing.active_tasks);

            loop {
                let mut task: Box<dyn FnMut() + Send> = {
                    let mut todo = sharing.todo.lock().unwrap();

                    let task;
                    loop {
                        if let Some(poped_task) = todo.pop_front() {
                            task = poped_task;
                            break;
                        }
                        let _waiting_guard = Registration::new(&sharing.waiting_tasks);

                        let received =
                            if sharing.active_tasks.load(Ordering::Acquire) <= MIN_THREADS {
                                todo = sharing.condvar.wait(todo).unwrap();
                                true
                            } else {
                                let (new_lock, waitres) = sharing
                                    .condvar
                                    .wait_timeout(todo, Duration::from_millis(5000))
                                    .unwrap();
                                todo = new_lock;
                                !waitres.timed_out()
                            };

                        if !received && todo.is_empty() {
                            return;
                        }
                    }

                    task
                };

                task();
            }
        });
        match started {
            Ok(_) => {
                if self.starved.swap(false, Ordering::Relaxed) {
                    log::info!("threads for connections can be started again");
                }
            }
            Err(err) => {
                if !self.starved.swap(true, Ordering::Relaxed) {
                    log::warn!(
                        "cannot start a thread for a new connection ({err}): connections wait \
                         for a busy thread to finish; raise TasksMax= or LimitNPROC= if this lasts"
                    );
                }
            }
        }
    }
}

impl Drop for TaskPool {
    fn drop(&mut self) {
        self.sharing
            .active_tasks
            .store(999_999_999, Ordering::Release);
        self.sharing.condvar.notify_all();
    }
}
